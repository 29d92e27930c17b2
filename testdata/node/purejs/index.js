'use strict';
exports.greet = (name) => 'hello ' + name;
//# sourceMappingURL=index.js.map
