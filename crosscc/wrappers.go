package crosscc

// compileWrapper runs `zig DRIVER` for $LAYERPACK_CROSS_TARGET. The container's
// headers and libraries come after zig's own libc headers (-idirafter, and -L
// after the caller's), so the image's newer glibc headers never replace the
// target glibc's while zlib.h or libcurl.so of the image are still found. zig cc
// enables UBSan traps when no -O is given; a library built that way would trap in
// production, so that is turned off. -mcpu=baseline: the code must run on every
// CPU Lambda has, not on the daemon's.
func compileWrapper(driver string) string {
	return `#!/bin/sh
# layerpack: zig ` + driver + ` for the runtime's CPU and glibc (see README, cross_compile).
t=${LAYERPACK_CROSS_TRIPLE:?}
exec ` + Mount + `/zig/zig ` + driver + ` -target "${LAYERPACK_CROSS_TARGET:?}" -mcpu=baseline \
  -fno-sanitize=undefined -Wno-unused-command-line-argument \
  "$@" \
  -idirafter /usr/local/include -idirafter "/usr/include/$t" -idirafter /usr/include \
  -L/usr/local/lib -L"/usr/lib/$t" -L/usr/lib64 -L/usr/lib
`
}

func toolWrapper(tool string) string {
	return "#!/bin/sh\nexec " + Mount + "/zig/zig " + tool + " \"$@\"\n"
}

// wrappers are the files written beside zig, by path in the toolchain folder.
// The CMake file sets only the tools: naming a CMAKE_SYSTEM_NAME would make
// CMake treat the build as a cross build and refuse try_run, which runs fine in
// the target's container.
var wrappers = map[string]string{
	"bin/cc":             compileWrapper("cc"),
	"bin/c++":            compileWrapper("c++"),
	"bin/ar":             toolWrapper("ar"),
	"bin/ranlib":         toolWrapper("ranlib"),
	"ruby/mkmf-cross.rb": mkmfCross,
	"toolchain.cmake": `# layerpack: zig cc for the runtime's CPU and glibc.
set(CMAKE_C_COMPILER ` + Mount + `/bin/cc)
set(CMAKE_CXX_COMPILER ` + Mount + `/bin/c++)
set(CMAKE_AR ` + Mount + `/bin/ar CACHE FILEPATH "")
set(CMAKE_RANLIB ` + Mount + `/bin/ranlib CACHE FILEPATH "")
`,
}

// mkmfCross is loaded through RUBYOPT. mkmf does not read $CC: the rbconfig.rb of
// Debian's and Amazon Linux's Ruby fixes CC, CXX and LDSHARED at Ruby's own build,
// and extconf.rb writes them into the Makefile. Replacing them in RbConfig before
// extconf.rb runs makes the Makefile, and mkmf's own checks, use the wrappers.
const mkmfCross = `# layerpack (cross_compile): C extensions compile with zig cc.
require "rbconfig"
cc, cxx = ENV["CC"], ENV["CXX"]
if cc && cc.start_with?("` + Mount + `/")
  [RbConfig::CONFIG, RbConfig::MAKEFILE_CONFIG].each do |c|
    c["CC"] = cc
    c["CPP"] = "#{cc} -E"
    c["LDSHARED"] = "#{cc} -shared"
    if cxx
      c["CXX"] = cxx
      c["LDSHAREDXX"] = "#{cxx} -shared"
    end
  end
end
`
