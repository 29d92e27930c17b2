# Only in the Gemfile's test group: must never be in a layer.
Gem::Specification.new do |s|
  s.name = "lp_devonly"
  s.version = "0.1.0"
  s.summary = "layerpack test fixture: test group only"
  s.authors = ["layerpack"]
  s.license = "MIT"
  s.files = ["lib/lp_devonly.rb"]
end
