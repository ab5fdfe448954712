// Encodes a message with @ngraveio/bc-ur and prints parts, one per line.
// Usage: node ur-encode.js MESSAGE_HEX_FILE MAX_FRAGMENT_LENGTH COUNT
'use strict';
const fs = require('fs');
const { UR, UREncoder } = require('@ngraveio/bc-ur');

const [file, maxLen, count] = process.argv.slice(2);
const message = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'hex');
const encoder = new UREncoder(UR.fromBuffer(message), Number(maxLen), 0, 10);
const out = [];
for (let i = 0; i < Number(count); i++) out.push(encoder.nextPart());
process.stdout.write(out.join('\n') + '\n');
