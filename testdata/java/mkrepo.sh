#!/bin/sh
# mkrepo.sh DEST: makes a Maven repository (file:// layout) of the test artifacts
# in DEST, and DEST/../main-classes with the load test's Main class.
#
#   dev.layerpack.test:lp-app:1.0       -> lp-core (compile), lp-provided (provided),
#                                          lp-testonly (test)
#   dev.layerpack.test:lp-core:1.0      a transitive dependency
#   dev.layerpack.test:lp-native:1.0    plus classifiers x86_64 and aarch_64, whose
#                                       jars carry native/libhello.so for that CPU
#                                       (gcc and aarch64-linux-gnu-gcc)
#
# Jars are made with a fixed --date, so the same sources give the same bytes.
# Every file has its .sha1 (Maven runs with strict checksums) and every artifact
# a maven-metadata.xml (version ranges read it).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
dest=$(cd "$1" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
date=1980-01-01T00:00:02Z
g=dev/layerpack/test

sha1() { sha1sum "$1" | cut -c1-40 >"$1.sha1"; }

# jarof NAME CLASSDIR [CLASSIFIER]: jar CLASSDIR as lp-NAME-1.0[-CLASSIFIER].jar
jarof() {
	d=$dest/$g/lp-$1/1.0
	mkdir -p "$d"
	f=$d/lp-$1-1.0${3:+-$3}.jar
	jar --create --date=$date --file "$f" -C "$2" .
	sha1 "$f"
}

pomof() {
	d=$dest/$g/lp-$1
	mkdir -p "$d/1.0"
	cp "$here/poms/lp-$1.pom" "$d/1.0/lp-$1-1.0.pom"
	sha1 "$d/1.0/lp-$1-1.0.pom"
	cat >"$d/maven-metadata.xml" <<META
<?xml version="1.0" encoding="UTF-8"?>
<metadata>
  <groupId>dev.layerpack.test</groupId>
  <artifactId>lp-$1</artifactId>
  <versioning>
    <latest>1.0</latest>
    <release>1.0</release>
    <versions>
      <version>1.0</version>
    </versions>
    <lastUpdated>19800101000000</lastUpdated>
  </versioning>
</metadata>
META
	sha1 "$d/maven-metadata.xml"
}

javac -nowarn --release 11 -d "$tmp/classes" $(find "$here/src" -name '*.java')
for a in core app testonly provided native; do
	mkdir -p "$tmp/$a"
	p=$(cd "$here/src/$a" && find . -name '*.java' | sed 's/\.java$//')
	for c in $p; do
		mkdir -p "$tmp/$a/$(dirname "$c")"
		cp "$tmp/classes/$c.class" "$tmp/$a/$c.class"
	done
	jarof "$a" "$tmp/$a"
	pomof "$a"
done
for cpu in x86_64 aarch_64; do
	cc=gcc
	[ "$cpu" = aarch_64 ] && cc=aarch64-linux-gnu-gcc
	mkdir -p "$tmp/native-$cpu/native"
	cp -R "$tmp/native/." "$tmp/native-$cpu/"
	$cc -shared -fPIC -O2 -o "$tmp/native-$cpu/native/libhello.so" "$here/src/native/hello.c"
	jarof native "$tmp/native-$cpu" "$cpu"
done
mkdir -p "$dest/../main-classes/dev/layerpack/test/main"
cp "$tmp/classes/dev/layerpack/test/main/Main.class" "$dest/../main-classes/dev/layerpack/test/main/"
