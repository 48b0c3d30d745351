// Package vulndb is lading's vulnerability database: built from the feeds the
// world publishes (package feed reads them), written once as a single file,
// then opened read-only and memory-mapped by every scan.
//
// # Model
//
// A Vulnerability is one CVE (or GHSA, GO-..., DSA-... when there is no CVE)
// with what every source says about it; records of different sources are
// merged through their aliases. An Advisory is one source's statement about
// one package: the ranges of affected versions (OSV events, sorted by
// version, or an npm range expression), explicitly affected versions, a
// status for when no fix applies (affected, will not fix, fix deferred, end of
// life, not affected) and the source's own severity. Advisories are keyed by
// namespace and package name, so that one lookup returns every advisory for a
// package: namespaces are ecosystems ("npm", "Go", "PyPI") or distribution
// releases ("alpine:3.10", "debian:12", "ubuntu:18.04"); see Namespace.
//
// # File format
//
// Why not bbolt: a bbolt file is a B+tree of 4 KiB pages built for updates.
// This database is written once and then only read, so a sorted table does the
// same job in less space, opens with one mmap and a header check (bbolt also
// takes a file lock and reads its meta pages), never needs compaction, and
// can be checked completely by a reader that bounds-checks every offset (a
// corrupted bbolt file can make bbolt panic, and a database pulled from a
// registry is input like any other). Lookups are a binary search over a
// fixed-width index followed by one copy of the matching value.
//
// All integers are little-endian. Offsets are from the start of the file;
// offsets inside sections are from the section's start. The header says
// where each section is; this writer puts them in the order
// vulnerabilities, advisories, keys, index, metadata (the metadata counts
// what was written, so it comes last; readers go by the header). Builds
// stream: see Builder.
//
//	offset  size
//	     0     8  magic "LADINGDB"
//	     8     4  schema version (SchemaVersion)
//	    12     4  header size (128)
//	    16    16  metadata section: offset, length (u64, u64)   JSON, see Metadata
//	    32    16  index section: offset, entry count            16 bytes per entry
//	    48    16  keys section: offset, length                  "namespace\x00name" strings
//	    64    16  advisories section: offset, length
//	    80    16  vulnerabilities section: offset, length
//	    96     8  file size
//	   104    20  reserved, zero
//	   124     4  CRC-32C of bytes 0..123
//
//	index entry (sorted by key bytes):
//	  u32 key offset, u32 key length      (in the keys section)
//	  u32 value offset, u32 value length  (in the advisories section)
//
//	value: uvarint n, then n advisories:
//	  uvarint vulnerability offset (in the vulnerabilities section)
//	  string  vulnerability ID
//	  uvarint source index (into Metadata.Sources)
//	  byte    status
//	  byte    flags: 1 source ID, 2 severity, 4 note, 8 ranges, 16 versions
//	  [string source ID]
//	  [severity]
//	  [string note]
//	  [uvarint n, n ranges: byte kind; kind NPM: string expr, string fixed;
//	                        else uvarint n, n events: byte kind, string version]
//	  [uvarint n, n strings: versions]
//
//	vulnerability: uvarint length of the rest, string ID, uvarint n + n strings aliases, string title,
//	  string description, uvarint n + n strings references, varint published
//	  and modified (Unix seconds, 0 unknown), uvarint n + n severities
//
//	severity: string source, byte type, string vector, uvarint score×10, byte rating
//	string:   uvarint length, bytes
//
// Sections are at most 4 GiB each. A writer writes a temporary file beside the
// target and renames it into place, so readers see the old file or the new
// one, never half of one; an open database keeps reading the file it opened.
package vulndb
