# A pure-Ruby gem: installed as files only.
Gem::Specification.new do |s|
  s.name = "lp_pure"
  s.version = "1.2.0"
  s.summary = "layerpack test fixture: pure Ruby"
  s.authors = ["layerpack"]
  s.license = "MIT"
  s.files = ["lib/lp_pure.rb"]
end
