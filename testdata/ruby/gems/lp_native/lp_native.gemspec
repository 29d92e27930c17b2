# A gem with a C extension and no platform gem: compiled at install time.
Gem::Specification.new do |s|
  s.name = "lp_native"
  s.version = "0.3.1"
  s.summary = "layerpack test fixture: C extension"
  s.authors = ["layerpack"]
  s.license = "MIT"
  s.files = ["lib/lp_native.rb", "ext/lp_native/extconf.rb", "ext/lp_native/lp_native.c"]
  s.extensions = ["ext/lp_native/extconf.rb"]
  s.add_dependency "lp_pure", "~> 1.0"
end
