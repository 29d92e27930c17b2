module LpPlat
  BUILT_FOR = File.read(File.join(__dir__, "lp_plat", "platform.txt")).strip
end
