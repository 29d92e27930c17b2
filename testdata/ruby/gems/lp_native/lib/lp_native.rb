require "lp_pure"
require "lp_native/lp_native"

module LpNative
  def self.describe
    LpPure.greet("#{LpNative.machine} (#{LpNative.add(2, 3)})")
  end
end
