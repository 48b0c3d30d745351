package layer

import (
	"os"
	"strings"
	"testing"
)

// stackCase is a crafted layer stack and the merged tree overlayfs shows
// for it. The same cases drive the unit tests of Export, the layer-by-layer
// Extract, and the comparison with the kernel.
type stackCase struct {
	name   string
	layers [][]ent // bottom first
	want   []string
	// noKernel says why the kernel comparison does not apply.
	noKernel string
}

func deep(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = "d"
	}
	return strings.Join(parts, "/")
}

func stackCases() []stackCase {
	d50, d100 := deep(50), deep(100)
	var deepWant []string
	for i := 1; i <= 50; i++ {
		deepWant = append(deepWant, deep(i)+" dir 0755")
	}
	deepWant = append(deepWant, d50+"/new file 0644 new", d50+"/z file 0644 z")

	return []stackCase{
		{
			name: "whiteout file",
			layers: [][]ent{
				{dir("etc"), file("etc/motd", "hi"), file("etc/issue", "alpine")},
				{whiteout("etc/motd")},
			},
			want: []string{"etc dir 0755", "etc/issue file 0644 alpine"},
		},
		{
			name: "whiteout dir",
			layers: [][]ent{
				{dir("media"), dir("media/cdrom"), file("media/cdrom/x", "x"), dir("media/keep")},
				{whiteout("media/cdrom")},
			},
			want: []string{"media dir 0755", "media/keep dir 0755"},
		},
		{
			name: "whiteout of a missing name",
			layers: [][]ent{
				{file("a", "a")},
				{whiteout("nothing"), whiteout("deep/er/nothing")},
			},
			want: []string{"a file 0644 a", "deep dir 0755", "deep/er dir 0755"},
		},
		{
			name: "opaque dir with new content in the same layer",
			layers: [][]ent{
				{dir("etc", mode(0o750)), dir("etc/periodic", mode(0o700)), dir("etc/periodic/hourly"), file("etc/periodic/hourly/a", "a"), file("etc/keep", "k")},
				{opaque("etc/periodic"), file("etc/periodic/daily/b", "b")},
			},
			want: []string{
				"etc dir 0750", "etc/keep file 0644 k",
				"etc/periodic dir 0700", "etc/periodic/daily dir 0755", "etc/periodic/daily/b file 0644 b",
			},
		},
		{
			name: "opaque dir with its own header",
			layers: [][]ent{
				{dir("d", mode(0o700)), file("d/old", "old")},
				{file("d/new", "new"), dir("d", mode(0o711)), opaque("d")},
			},
			want: []string{"d dir 0711", "d/new file 0644 new"},
		},
		{
			name: "opaque root",
			layers: [][]ent{
				{dir("./"), file("old", "old"), dir("etc"), file("etc/x", "x")},
				{opaque("."), file("new", "new")},
			},
			// Every lower layer is hidden, as containerd's and umoci's
			// appliers unpack it.
			want:     []string{"new file 0644 new"},
			noKernel: "the kernel never looks up a lower root, so it ignores the opaque xattr there; containerd and umoci apply the marker",
		},
		{
			name: "the same path twice in a layer",
			layers: [][]ent{
				{file("a", "lower"), file("keep", "k")},
				{file("a", "first", mode(0o600)), file("b", "b"), file("a", "last", mode(0o640))},
			},
			want: []string{"a file 0640 last", "b file 0644 b", "keep file 0644 k"},
		},
		{
			name: "a directory, then a file of the same name",
			layers: [][]ent{
				{dir("d"), file("d/lower", "l"), file("x", "x")},
				{dir("d", mode(0o700)), file("d/x", "x"), dir("d/sub"), file("d/sub/y", "y"), file("d", "file")},
			},
			want:     []string{"d file 0644 file", "x file 0644 x"},
			noKernel: "GNU tar does not replace a non-empty directory by a file; docker and containerd do",
		},
		{
			name: "a file, then a directory of the same name",
			layers: [][]ent{
				{dir("d"), file("d/lower", "l")},
				{file("d", "f"), dir("d", mode(0o711)), file("d/new", "n")},
			},
			// Removing the lower directory to make way for the file removed
			// its contents too.
			want:     []string{"d dir 0711", "d/new file 0644 n"},
			noKernel: "unpacking the layer into an empty directory keeps nothing of the removal that made way for the file",
		},
		{
			name: "a hard link keeps the file a later entry replaces",
			layers: [][]ent{
				{file("a", "old"), hardlink("b", "a"), hardlink("c", "a"), file("a", "new")},
			},
			want: []string{"= b c", "a file 0644 new", "b file 0644 old", "c file 0644 old"},
		},
		{
			name: "file to dir",
			layers: [][]ent{
				{file("a", "file"), file("b", "b")},
				{dir("a"), file("a/x", "x")},
			},
			want: []string{"a dir 0755", "a/x file 0644 x", "b file 0644 b"},
		},
		{
			name: "dir to file",
			layers: [][]ent{
				{dir("a"), dir("a/sub"), file("a/sub/x", "x")},
				{file("a", "nowfile")},
			},
			want: []string{"a file 0644 nowfile"},
		},
		{
			name: "dir to symlink",
			layers: [][]ent{
				{dir("lib"), file("lib/x", "x"), dir("usr"), dir("usr/lib"), file("usr/lib/y", "y")},
				{symlink("lib", "usr/lib")},
			},
			want: []string{"lib sym 0777 usr/lib", "usr dir 0755", "usr/lib dir 0755", "usr/lib/y file 0644 y"},
		},
		{
			name: "database directory moved, symlink left behind",
			layers: [][]ent{
				{dir("var"), dir("var/lib"), dir("var/lib/dpkg"), file("var/lib/dpkg/status", "old")},
				{dir("data"), dir("data/dpkg"), file("data/dpkg/status", "new"), symlink("var/lib/dpkg", "../../data/dpkg")},
			},
			want: []string{"data dir 0755", "data/dpkg dir 0755", "data/dpkg/status file 0644 new",
				"var dir 0755", "var/lib dir 0755", "var/lib/dpkg sym 0777 ../../data/dpkg"},
		},
		{
			name: "symlink first, its target filled by a later layer",
			layers: [][]ent{
				{dir("lib"), dir("lib/apk"), symlink("lib/apk/db", "/srv/apk")},
				{dir("srv"), dir("srv/apk"), file("srv/apk/installed", "db")},
			},
			want: []string{"lib dir 0755", "lib/apk dir 0755", "lib/apk/db sym 0777 /srv/apk",
				"srv dir 0755", "srv/apk dir 0755", "srv/apk/installed file 0644 db"},
		},
		{
			name: "usrmerge over a populated tree",
			layers: [][]ent{
				{dir("bin"), file("bin/sh", "sh"), dir("usr"), dir("usr/bin"), file("usr/bin/env", "env")},
				{whiteout("bin"), symlink("bin", "usr/bin"), file("usr/bin/sh", "sh2")},
			},
			want: []string{"bin sym 0777 usr/bin", "usr dir 0755", "usr/bin dir 0755", "usr/bin/env file 0644 env", "usr/bin/sh file 0644 sh2"},
		},
		{
			name: "symlink to dir through a child",
			layers: [][]ent{
				{symlink("lib", "usr/lib"), dir("usr"), dir("usr/lib"), file("usr/lib/y", "y")},
				{file("lib/foo", "foo")},
			},
			want: []string{"lib dir 0755", "lib/foo file 0644 foo", "usr dir 0755", "usr/lib dir 0755", "usr/lib/y file 0644 y"},
		},
		{
			name: "symlink to explicit dir",
			layers: [][]ent{
				{symlink("lib", "usr/lib"), file("x", "x")},
				{dir("lib", mode(0o700))},
			},
			want: []string{"lib dir 0700", "x file 0644 x"},
		},
		{
			name: "implied parents",
			layers: [][]ent{
				{file("a/b/c/f", "f")},
				{file("a/b/g", "g", mode(0o600))},
			},
			want: []string{"a dir 0755", "a/b dir 0755", "a/b/c dir 0755", "a/b/c/f file 0644 f", "a/b/g file 0600 g"},
		},
		{
			name: "directory metadata from the highest explicit header",
			layers: [][]ent{
				{dir("a", mode(0o700), owner(1, 2)), file("a/x", "x")},
				{file("a/y", "y")},
				{dir("b", mode(0o750))},
				{dir("b", mode(0o711)), file("b/z", "z")},
			},
			want: []string{"a dir 0700 @1:2", "a/x file 0644 x", "a/y file 0644 y", "b dir 0711", "b/z file 0644 z"},
		},
		{
			name: "non-directory in a middle layer cuts the merge",
			layers: [][]ent{
				{dir("a"), file("a/x", "x")},
				{file("a", "file")},
				{dir("a", mode(0o700)), file("a/y", "y")},
			},
			want: []string{"a dir 0700", "a/y file 0644 y"},
		},
		{
			name: "whiteout in a middle layer",
			layers: [][]ent{
				{dir("a", mode(0o700)), file("a/x", "x")},
				{whiteout("a")},
				{file("a/y", "y")},
			},
			want: []string{"a dir 0755", "a/y file 0644 y"},
		},
		{
			name: "whiteout and entry in the same layer",
			layers: [][]ent{
				{dir("a", mode(0o700)), file("a/x", "x"), file("f", "old")},
				{whiteout("a"), file("a/y", "y"), file("f", "new"), whiteout("f")},
			},
			want: []string{"a dir 0755", "a/y file 0644 y", "f file 0644 new"},
		},
		{
			name: "whiteout after the new dir in the same layer",
			layers: [][]ent{
				{dir("a"), file("a/x", "x")},
				{dir("a", mode(0o711)), file("a/y", "y"), whiteout("a")},
			},
			want: []string{"a dir 0711", "a/y file 0644 y"},
		},
		{
			name: "duplicate directories: the later header wins",
			layers: [][]ent{
				{dir("a", mode(0o700)), file("a/x", "x"), dir("a", mode(0o750))},
			},
			want: []string{"a dir 0750", "a/x file 0644 x"},
		},
		{
			name: "hard link in one layer",
			layers: [][]ent{
				{file("t", "data"), hardlink("p", "t"), hardlink("q", "p")},
			},
			want: []string{"= p q t", "p file 0644 data", "q file 0644 data", "t file 0644 data"},
		},
		{
			name: "hard link to an overwritten target",
			layers: [][]ent{
				{file("t", "old", mode(0o600)), hardlink("p", "t")},
				{file("t", "new")},
			},
			want: []string{"p file 0600 old", "t file 0644 new"},
		},
		{
			name: "hard links to a whited-out target",
			layers: [][]ent{
				{dir("d"), file("d/t", "old"), hardlink("p1", "d/t"), hardlink("p2", "d/t"), file("d/u", "")},
				{whiteout("d")},
			},
			want: []string{"= p1 p2", "p1 file 0644 old", "p2 file 0644 old"},
		},
		{
			name: "hard link hidden, target shown",
			layers: [][]ent{
				{file("t", "data"), hardlink("p", "t")},
				{whiteout("p")},
			},
			want: []string{"t file 0644 data"},
		},
		{
			name: "hard link to a symlink",
			layers: [][]ent{
				{symlink("s", "/etc/passwd"), hardlink("p", "s"), file("x", "x")},
				{whiteout("s")},
			},
			want: []string{"p sym 0777 /etc/passwd", "x file 0644 x"},
		},
		{
			name: "hard link to a lower layer",
			layers: [][]ent{
				{dir("usr"), file("usr/t", "data")},
				{hardlink("p", "usr/t")},
			},
			want: []string{"= p usr/t", "p file 0644 data", "usr dir 0755", "usr/t file 0644 data"},
		},
		{
			name: "hard link to a lower layer, target overwritten above",
			layers: [][]ent{
				{file("t", "old")},
				{hardlink("p", "t")},
				{file("t", "new")},
			},
			want: []string{"p file 0644 old", "t file 0644 new"},
		},
		{
			name: "hard link to a lower layer, target replaced after the link",
			layers: [][]ent{
				{file("t", "old")},
				{hardlink("p", "t"), file("t", "new")},
			},
			want: []string{"p file 0644 old", "t file 0644 new"},
		},
		{
			name: "hard link chain across three layers",
			layers: [][]ent{
				{file("t", "data")},
				{hardlink("u", "t")},
				{hardlink("v", "u")},
			},
			want:     []string{"= t u v", "t file 0644 data", "u file 0644 data", "v file 0644 data"},
			noKernel: "overlayfs copy-up (without index=on) breaks links to files of lower layers",
		},
		{
			name: "hard link to a lower layer's link group",
			layers: [][]ent{
				{file("t", "data"), hardlink("u", "t")},
				{hardlink("p", "t")},
			},
			want:     []string{"= p t u", "p file 0644 data", "t file 0644 data", "u file 0644 data"},
			noKernel: "overlayfs copy-up (without index=on) breaks links to files of lower layers",
		},
		{
			name: "modes, owners, fifo",
			layers: [][]ent{
				{dir("tmp", mode(0o1777)), file("bin/su", "su", mode(0o4755)), file("bin/w", "w", mode(0o2711), owner(0, 5)), fifo("run/fifo", mode(0o600), owner(1000, 1000))},
			},
			want: []string{"bin dir 0755", "bin/su file 4755 su", "bin/w file 2711 @0:5 w", "run dir 0755", "run/fifo fifo 0600 @1000:1000", "tmp dir 1777"},
		},
		{
			name: "names in ./ and trailing-slash forms",
			layers: [][]ent{
				{dir("./"), dir("./etc/"), file("./etc/a", "a"), dir("usr/")},
				{file("etc/a", "b"), whiteout("./usr")},
			},
			want: []string{"etc dir 0755", "etc/a file 0644 b"},
		},
		{
			name: "aufs metadata is ignored",
			layers: [][]ent{
				{file("a", "a")},
				{dir(".wh..wh.plnk"), file(".wh..wh.plnk/123.456", "x"), file(".wh..wh.aufs", "")},
			},
			want: []string{"a file 0644 a"},
		},
		{
			name: "deep tree",
			layers: [][]ent{
				{file(d100+"/f", "f"), file(d50+"/z", "z")},
				{whiteout(deep(51)), file(d50+"/new", "new")},
			},
			want: deepWant,
		},
	}
}

func TestExport(t *testing.T) {
	for _, tc := range stackCases() {
		t.Run(tc.name, func(t *testing.T) {
			out, err := export(t, stackOf(t, tc.layers...))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmpLines(tc.want, listTar(t, out)); diff != "" {
				t.Errorf("merged tree (-want +got):\n%s", diff)
			}
		})
	}
}

// TestExportExtract checks Export followed by Extract, and Extract applying
// the layers one by one, against the same expectations (no kernel needed).
func TestExportExtract(t *testing.T) {
	for _, tc := range stackCases() {
		t.Run(tc.name, func(t *testing.T) {
			layers := stackOf(t, tc.layers...)
			want := tc.want
			if os.Geteuid() != 0 {
				want = withoutOwners(want)
			}
			norm := func(l []string) []string {
				if os.Geteuid() != 0 {
					return withoutOwners(l)
				}
				return l
			}
			merged, err := export(t, layers)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmpLines(want, norm(extractTree(t, merged))); diff != "" {
				t.Errorf("Export+Extract (-want +got):\n%s", diff)
			}
			if diff := cmpLines(want, norm(layerwiseTree(t, layers))); diff != "" {
				t.Errorf("Extract(ApplyWhiteouts) layer by layer (-want +got):\n%s", diff)
			}
		})
	}
}
