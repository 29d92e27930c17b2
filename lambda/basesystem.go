package lambda

import "strings"

// The shared libraries every Lambda execution environment of an operating system
// has in /lib64 (which is on LD_LIBRARY_PATH before /opt/lib), by SONAME: builders leave them
// out of bundles and the checker does not report them missing.
//
// The lists are deliberately short. A library missing here makes a "needed"
// warning that a user can read and dismiss; a library listed here by mistake hides
// a real "cannot open shared object file" at run time. Add a name only with a
// source.
//
// Sources:
//   - glibc: AL2 ships glibc 2.26 and AL2023 glibc 2.34 (Lambda runtimes table and the
//     AL2023 user guide, "Core toolchain packages glibc, gcc, binutils"). The
//     SONAMEs are the ones the glibc package installs. Since glibc 2.34 libpthread,
//     libdl, librt, libutil and libanl are empty stubs whose code is in libc.so.6,
//     but the stub files are still installed, so binaries linked against an older
//     glibc still load.
//   - The AL2023 Lambda images (provided.al2023 and the language images) are built
//     on the AL2023 minimal container image (the announcement of provided.al2023 in
//     aws/aws-lambda-base-images#59 and #92); the rpm list of
//     public.ecr.aws/lambda/python:3.12 in amazonlinux/amazon-linux-2023#585 shows
//     glibc and glib2 but was cut off before the l* packages.
//   - The AL2 Lambda images are built on the amazonlinux:2 container image, whose
//     package updates list glibc, libcrypt, libgcc and libstdc++
//     (docker-library/official-images amazonlinux pull requests).
//
// Entries marked (inferred) are not stated by a primary source:
//   - libgcc_s.so.1 and libstdc++.so.6 on AL2023: the minimal image's package
//     manager, microdnf, runs on libdnf, a C++ library, so libstdc++ and the libgcc
//     it needs are installed.
//   - libgcc_s.so.1 and libstdc++.so.6 on AL2: the amazonlinux:2 image updates list
//     libgcc and libstdc++; that the AL2 Lambda images keep them is inferred.
//   - libz.so.1 on both: rpm, which every image carries, and glib2, which the
//     python3.12 image's rpm list shows, link zlib.
//   - libcrypt.so.1 on AL2: glibc 2.26's libcrypt is its own package (libcrypt) on
//     AL2 and appears in the amazonlinux:2 image updates. AL2023 moved to libxcrypt
//     (libcrypt.so.2), which the minimal image is not known to include, so no libcrypt
//     is listed for al2023.
//
// Not listed on purpose although usually present: OpenSSL (libssl/libcrypto differ:
// 1.0 on AL2, 3 on AL2023), libcurl, libxml2, liblzma, libffi, libgomp; bundle
// them or accept the warning.
var baseSystem = map[string]map[string]bool{
	"al2": set(
		glibcSonames,
		"libcrypt.so.1",  // (inferred)
		"libgcc_s.so.1",  // (inferred)
		"libstdc++.so.6", // (inferred)
		"libz.so.1",      // (inferred)
	),
	"al2023": set(
		glibcSonames,
		"libgcc_s.so.1",  // (inferred)
		"libstdc++.so.6", // (inferred)
		"libz.so.1",      // (inferred)
	),
}

// glibcSonames are the libraries of glibc 2.26 and 2.34 alike, for x86_64 and
// aarch64 (each loader exists only on its architecture, but a binary for the other
// one is reported by the machine check).
var glibcSonames = []string{
	"ld-linux-x86-64.so.2",
	"ld-linux-aarch64.so.1",
	"libc.so.6",
	"libm.so.6",
	"libdl.so.2",
	"libpthread.so.0",
	"librt.so.1",
	"libutil.so.1",
	"libanl.so.1",
	"libresolv.so.2",
	"libBrokenLocale.so.1",
	"libthread_db.so.1",
}

func set(base []string, more ...string) map[string]bool {
	m := make(map[string]bool, len(base)+len(more))
	for _, s := range append(append([]string(nil), base...), more...) {
		m[s] = true
	}
	return m
}

// BaseSystemProvides reports whether every Lambda execution environment of the
// operating system os ("al2" or "al2023", as in lambda.Runtime.OS) has a library
// with the SONAME soname, so a layer need not (and should not) bundle it. Unknown
// operating systems provide nothing.
func BaseSystemProvides(os string, soname string) bool {
	return baseSystem[os][soname]
}

// RuntimeProvides reports whether the language runtime itself supplies soname to
// the native code it loads, beyond the operating system.
//
//   - Ruby: extension libraries of gems are linked against libruby.so.X.Y, which the
//     runtime keeps in /var/lang/lib (on LD_LIBRARY_PATH). (inferred)
//   - Python: extensions built against a shared CPython may name
//     libpythonX.Y.so.1.0; the runtime's interpreter in /var/lang/lib is one. (inferred)
//   - Java: JNI libraries may name libjvm.so, which the running JVM has already
//     loaded, so the loader finds it by SONAME. (inferred)
func RuntimeProvides(rt Runtime, soname string) bool {
	switch rt.Language {
	case Ruby:
		return soname == "libruby.so."+rt.Version
	case Python:
		return soname == "libpython"+rt.Version+".so.1.0"
	case Java:
		return soname == "libjvm.so"
	}
	return false
}

// osNames are the operating systems of Runtime.OS as messages name them.
var osNames = map[string]string{
	"al2":    "Amazon Linux 2",
	"al2023": "Amazon Linux 2023",
}

// OSes are the operating systems of the runtimes, in the order messages list them.
var OSes = []string{"al2", "al2023"}

// OSName is how messages name an operating system of Runtime.OS.
func OSName(os string) string {
	if n, ok := osNames[os]; ok {
		return n
	}
	return strings.ToUpper(os)
}
