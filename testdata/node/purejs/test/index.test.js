const assert = require('assert');
assert.equal(require('..').greet('x'), 'hello x');
