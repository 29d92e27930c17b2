#!/usr/bin/env node
console.log(require("..").greet("cli"));
