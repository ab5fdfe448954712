// Decodes UR parts read from stdin (one per line) with @ngraveio/bc-ur and
// prints JSON: the message as hex and how many lines it consumed. Exits 1
// if the input ends before the message is complete or decoding fails.
'use strict';
const readline = require('readline');
const { URDecoder } = require('@ngraveio/bc-ur');

const decoder = new URDecoder();
let lines = 0;
let finished = false;
const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', (line) => {
  if (finished || line === '') return;
  lines++;
  decoder.receivePart(line);
  if (decoder.isComplete()) {
    finished = true;
    if (!decoder.isSuccess()) {
      process.stderr.write('ur-decode: ' + decoder.resultError() + '\n');
      process.exit(1);
    }
    const message = decoder.resultUR().decodeCBOR();
    process.stdout.write(JSON.stringify({ hex: Buffer.from(message).toString('hex'), lines }) + '\n');
    rl.close();
  }
});
rl.on('close', () => {
  if (!finished) {
    process.stderr.write(`ur-decode: input ended after ${lines} parts before the message was complete (progress ${decoder.getProgress()})\n`);
    process.exit(1);
  }
});
