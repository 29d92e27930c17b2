require "mkmf"
create_makefile("lp_native/lp_native")
