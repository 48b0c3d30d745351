package osrelease

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/analyze/analyzer"
	"github.com/lading-dev/lading/internal/pkg"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		path, content string
		want          *pkg.OS
	}{
		{"etc/os-release", "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME=\"Alpine Linux v3.20\"\n",
			&pkg.OS{ID: "alpine", VersionID: "3.20.3", Name: "Alpine Linux v3.20", Family: "alpine"}},
		{"usr/lib/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n",
			&pkg.OS{ID: "debian", VersionID: "12", Codename: "bookworm", Name: "Debian GNU/Linux 12 (bookworm)", Family: "debian"}},
		{"etc/os-release", "NAME=\"Ubuntu\"\nVERSION=\"18.04.6 LTS (Bionic Beaver)\"\nID=ubuntu\nID_LIKE=debian\nPRETTY_NAME=\"Ubuntu 18.04.6 LTS\"\nVERSION_ID=\"18.04\"\nUBUNTU_CODENAME=bionic\n",
			&pkg.OS{ID: "ubuntu", VersionID: "18.04", Codename: "bionic", Name: "Ubuntu 18.04.6 LTS", Family: "debian"}},
		{"etc/os-release", "NAME=\"Red Hat Enterprise Linux\"\nID=\"rhel\"\nVERSION_ID=\"8.1\"\n",
			&pkg.OS{ID: "rhel", VersionID: "8.1", Name: "Red Hat Enterprise Linux", Family: "redhat"}},
		{"etc/os-release", "ID=\"rocky\"\nVERSION_ID=\"9.3\"\nPRETTY_NAME=\"Rocky Linux 9.3 (Blue Onyx)\"\n",
			&pkg.OS{ID: "rocky", VersionID: "9.3", Name: "Rocky Linux 9.3 (Blue Onyx)", Family: "redhat"}},
		{"etc/os-release", "ID=\"almalinux\"\nVERSION_ID=\"8.9\"\n", &pkg.OS{ID: "almalinux", VersionID: "8.9", Family: "redhat"}},
		{"etc/os-release", "ID=\"ol\"\nVERSION_ID=\"8.6\"\n", &pkg.OS{ID: "ol", VersionID: "8.6", Family: "redhat"}},
		{"etc/os-release", "ID=\"amzn\"\nVERSION_ID=\"2023\"\n", &pkg.OS{ID: "amzn", VersionID: "2023", Family: "redhat"}},
		{"etc/os-release", "ID=fedora\nVERSION_ID=39\n", &pkg.OS{ID: "fedora", VersionID: "39", Family: "redhat"}},
		{"etc/os-release", "ID=\"sles\"\nVERSION_ID=\"15.5\"\n", &pkg.OS{ID: "sles", VersionID: "15.5", Family: "suse"}},
		{"etc/os-release", "ID=\"opensuse-leap\"\nVERSION_ID=\"15.5\"\n", &pkg.OS{ID: "opensuse-leap", VersionID: "15.5", Family: "suse"}},
		{"etc/os-release", "ID=photon\nVERSION_ID=4.0\n", &pkg.OS{ID: "photon", VersionID: "4.0", Family: "photon"}},
		{"etc/os-release", "ID=wolfi\nNAME=\"Wolfi\"\nVERSION_ID=20230201\n", &pkg.OS{ID: "wolfi", VersionID: "20230201", Name: "Wolfi", Family: "alpine"}},
		{"etc/os-release", "ID=chainguard\nNAME=\"Chainguard\"\n", &pkg.OS{ID: "chainguard", Name: "Chainguard", Family: "alpine"}},
		{"etc/os-release", "ID=mariner\nVERSION_ID=\"2.0\"\n", &pkg.OS{ID: "mariner", VersionID: "2.0", Family: "mariner"}},
		{"etc/os-release", "# comment\n\nID='quoted'\nNAME=\"a \\\"b\\\"\"\n", &pkg.OS{ID: "quoted", Name: `a "b"`, Family: "quoted"}},
		{"etc/os-release", "NAME=x\n", nil},
		{"etc/alpine-release", "3.9.6\n", &pkg.OS{ID: "alpine", VersionID: "3.9.6", Family: "alpine"}},
		{"etc/debian_version", "12.15\n", &pkg.OS{ID: "debian", VersionID: "12.15", Family: "debian"}},
		{"etc/debian_version", "trixie/sid\n", &pkg.OS{ID: "debian", Codename: "trixie", Family: "debian"}},
		{"etc/lsb-release", "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=18.04\nDISTRIB_CODENAME=bionic\nDISTRIB_DESCRIPTION=\"Ubuntu 18.04.6 LTS\"\n",
			&pkg.OS{ID: "ubuntu", VersionID: "18.04", Codename: "bionic", Name: "Ubuntu 18.04.6 LTS", Family: "debian"}},
		{"etc/redhat-release", "Red Hat Enterprise Linux release 8.1 (Ootpa)\n", &pkg.OS{ID: "rhel", VersionID: "8.1", Name: "Red Hat Enterprise Linux release 8.1 (Ootpa)", Family: "redhat"}},
		{"etc/centos-release", "CentOS Linux release 7.9.2009 (Core)\n", &pkg.OS{ID: "centos", VersionID: "7.9.2009", Name: "CentOS Linux release 7.9.2009 (Core)", Family: "redhat"}},
		{"etc/rocky-release", "Rocky Linux release 9.3 (Blue Onyx)\n", &pkg.OS{ID: "rocky", VersionID: "9.3", Name: "Rocky Linux release 9.3 (Blue Onyx)", Family: "redhat"}},
		{"etc/almalinux-release", "AlmaLinux release 8.9 (Midnight Oncilla)\n", &pkg.OS{ID: "almalinux", VersionID: "8.9", Name: "AlmaLinux release 8.9 (Midnight Oncilla)", Family: "redhat"}},
		{"etc/oracle-release", "Oracle Linux Server release 8.6\n", &pkg.OS{ID: "ol", VersionID: "8.6", Name: "Oracle Linux Server release 8.6", Family: "redhat"}},
		{"etc/system-release", "Amazon Linux release 2 (Karoo)\n", &pkg.OS{ID: "amzn", VersionID: "2", Name: "Amazon Linux release 2 (Karoo)", Family: "redhat"}},
		{"etc/system-release", "Amazon Linux AMI release 2018.03\n", &pkg.OS{ID: "amzn", VersionID: "2018.03", Name: "Amazon Linux AMI release 2018.03", Family: "redhat"}},
		{"etc/fedora-release", "Fedora release 39 (Thirty Nine)\n", &pkg.OS{ID: "fedora", VersionID: "39", Name: "Fedora release 39 (Thirty Nine)", Family: "redhat"}},
		{"etc/system-release", "Something else release 1\n", nil},
		{"etc/SuSE-release", "SUSE Linux Enterprise Server 12 (x86_64)\nVERSION = 12\nPATCHLEVEL = 3\n", &pkg.OS{ID: "sles", VersionID: "12.3", Name: "SUSE Linux Enterprise Server 12 (x86_64)", Family: "suse"}},
		{"etc/SuSE-release", "openSUSE 42.3 (x86_64)\nVERSION = 42.3\n", &pkg.OS{ID: "opensuse-leap", VersionID: "42.3", Name: "openSUSE 42.3 (x86_64)", Family: "suse"}},
		{"etc/photon-release", "VMware Photon OS 3.0\nPHOTON_BUILD_NUMBER=1\n", &pkg.OS{ID: "photon", VersionID: "3.0", Name: "VMware Photon OS 3.0", Family: "photon"}},
	} {
		r, err := New().Analyze(context.Background(), analyzer.BytesFile(tc.path, []byte(tc.content)))
		if err != nil {
			t.Fatal(err)
		}
		var got *pkg.OS
		if r != nil {
			got = r.OS
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s %q (-want +got):\n%s", tc.path, tc.content, diff)
		}
	}
}

func TestResolve(t *testing.T) {
	os := func(src, id, ver string) pkg.OS {
		return pkg.OS{ID: id, VersionID: ver, Source: src, Family: pkg.Family(id)}
	}
	for _, tc := range []struct {
		name string
		ev   []pkg.OS
		want *pkg.OS
	}{
		{"none", nil, nil},
		{"debian point release", []pkg.OS{os("/etc/debian_version", "debian", "12.15"), os("/usr/lib/os-release", "debian", "12")},
			&pkg.OS{ID: "debian", VersionID: "12.15", Family: "debian", Source: "/usr/lib/os-release"}},
		{"etc before usr/lib", []pkg.OS{os("/usr/lib/os-release", "debian", "12"), os("/etc/os-release", "ubuntu", "22.04")},
			&pkg.OS{ID: "ubuntu", VersionID: "22.04", Family: "debian", Source: "/etc/os-release"}},
		{"ubuntu ignores debian_version", []pkg.OS{os("/etc/os-release", "ubuntu", "18.04"), os("/etc/debian_version", "debian", "18.04.1")},
			&pkg.OS{ID: "ubuntu", VersionID: "18.04", Family: "debian", Source: "/etc/os-release"}},
		{"centos release file", []pkg.OS{os("/etc/os-release", "centos", "7"), os("/etc/centos-release", "centos", "7.9.2009")},
			&pkg.OS{ID: "centos", VersionID: "7.9.2009", Family: "redhat", Source: "/etc/os-release"}},
		{"a disagreeing refinement is ignored", []pkg.OS{os("/etc/os-release", "rhel", "8.1"), os("/etc/redhat-release", "rhel", "9.0")},
			&pkg.OS{ID: "rhel", VersionID: "8.1", Family: "redhat", Source: "/etc/os-release"}},
		{"release file alone", []pkg.OS{os("/etc/alpine-release", "alpine", "3.9.6")},
			&pkg.OS{ID: "alpine", VersionID: "3.9.6", Family: "alpine", Source: "/etc/alpine-release"}},
		{"distroless hint", []pkg.OS{{ID: "debian", VersionID: "12", Family: "debian", Distroless: true, Source: "/var/lib/dpkg/status.d/base-files"}},
			&pkg.OS{ID: "debian", VersionID: "12", Family: "debian", Distroless: true, Source: "/var/lib/dpkg/status.d/base-files"}},
		{"a release file beats the hint", []pkg.OS{{ID: "debian", VersionID: "12", Distroless: true, Source: "/var/lib/dpkg/status.d/base-files"}, os("/etc/debian_version", "debian", "12.15")},
			&pkg.OS{ID: "debian", VersionID: "12.15", Family: "debian", Source: "/etc/debian_version"}},
	} {
		if diff := cmp.Diff(tc.want, Resolve(tc.ev)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("etc/os-release", []byte("ID=alpine\nVERSION_ID=3.20.3\n"))
	f.Add("etc/redhat-release", []byte("CentOS Linux release 7.9.2009 (Core)\n"))
	f.Add("etc/SuSE-release", []byte("SUSE Linux Enterprise Server 12\nVERSION = 12\n"))
	f.Fuzz(func(t *testing.T, path string, data []byte) {
		if os := Parse(path, data); os != nil && os.ID == "" {
			t.Fatal("OS without an ID")
		}
	})
}
