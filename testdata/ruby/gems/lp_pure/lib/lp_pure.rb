module LpPure
  VERSION = "1.2.0"

  def self.greet(name)
    "hello, #{name}"
  end
end
