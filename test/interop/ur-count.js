// For each line of stdin, a JSON array of UR parts (the frames that
// reached a receiver, in order), decodes them with a fresh @ngraveio/bc-ur
// decoder and prints how many parts it consumed before the message was
// complete, or -1 if it never completed, one number per line.
'use strict';
const readline = require('readline');
const { URDecoder } = require('@ngraveio/bc-ur');

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', (line) => {
  if (line === '') return;
  const parts = JSON.parse(line);
  const decoder = new URDecoder();
  let used = -1;
  for (let i = 0; i < parts.length; i++) {
    decoder.receivePart(parts[i]);
    if (decoder.isComplete()) {
      used = decoder.isSuccess() ? i + 1 : -1;
      break;
    }
  }
  process.stdout.write(used + '\n');
});
