# A gem published for the ruby platform and as precompiled platform gems
# (LP_PLATFORM=x86_64-linux / aarch64-linux): the installer must pick the
# platform gem of the target. lib/lp_plat/platform.txt says which one it is.
Gem::Specification.new do |s|
  s.name = "lp_plat"
  s.version = "2.0.0"
  s.summary = "layerpack test fixture: platform gems"
  s.authors = ["layerpack"]
  s.license = "MIT"
  s.platform = ENV.fetch("LP_PLATFORM", "ruby")
  s.files = ["lib/lp_plat.rb", "lib/lp_plat/platform.txt"]
end
