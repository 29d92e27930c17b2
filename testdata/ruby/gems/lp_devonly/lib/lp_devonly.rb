module LpDevonly; end
