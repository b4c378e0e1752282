#!/usr/bin/env node
console.log('dcx hello');
