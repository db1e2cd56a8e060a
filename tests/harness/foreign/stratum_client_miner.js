// A CPU miner on the npm package stratum-client (arnabk/stratum-client): the connection,
// the handshake, the framing and the pairing of verdicts with submits are the package's
// (it sends every submit with the id "mining.submit" and pairs replies by order alone).
// This driver only hashes what the pool sends and prints one JSON line per share told:
//   node stratum_client_miner.js HOST PORT WORKER COUNT
'use strict';
const stratumClient = require('stratum-client');
const { headerPrefix, solve } = require('./sha256d_work');

const [host, port, worker, countArg] = process.argv.slice(2);
const count = Number(countArg);
let extraNonce1 = '';
let extraNonce2Size = 4;
let difficulty = 1;
let job = null;
let mining = false;
let en2 = 0;
let last = null;
const waiting = []; // submitted, in order, not yet told
let told = 0;

function report(code) {
  const share = waiting.shift();
  told += 1;
  process.stdout.write(JSON.stringify({ ...share, told: code }) + '\n');
  if (told === count) { miner.shutdown(); process.exit(0); }
}

function nextShare(i) {
  // every 7th a duplicate of the one before, every 5th below the target: as firmware errs
  if (i % 7 === 6 && last) return { ...last };
  en2 += 1;
  const en2hex = en2.toString(16).padStart(extraNonce2Size * 2, '0');
  const prefix = headerPrefix(job, extraNonce1, en2hex, job.ntime);
  const nonce = solve(prefix, difficulty, Math.floor(Math.random() * 2 ** 32), i % 5 !== 4);
  last = { job_id: job.jobId, extranonce1: extraNonce1, extranonce2: en2hex, ntime: job.ntime,
           nonce: nonce.toString(16).padStart(8, '0') };
  return last;
}

function mine(i) {
  if (i >= count) return;
  const share = nextShare(i);
  waiting.push(share);
  miner.submit({ worker_name: worker, job_id: share.job_id, extranonce2: share.extranonce2,
                 ntime: share.ntime, nonce: share.nonce });
  setTimeout(() => mine(i + 1), 5);
}

const miner = stratumClient({
  server: host,
  port: Number(port),
  worker,
  password: 'x',
  autoReconnectOnError: false,
  onSubscribe: (s) => { extraNonce1 = s.extraNonce1; extraNonce2Size = s.extraNonce2Size; },
  onNewDifficulty: (d) => { difficulty = d; },
  onNewMiningWork: (work) => {
    job = { ...work, jobId: String(work.jobId) };
    if (!mining && extraNonce1) { mining = true; mine(0); }
  },
  onSubmitWorkSuccess: () => report(null),
  onSubmitWorkFail: (error) => report(Array.isArray(error) ? error[0] : 'false'),
  onError: (error) => { process.stderr.write(`error: ${error}\n`); process.exit(3); },
});
setTimeout(() => { process.stderr.write(`timed out with ${told} of ${count} told\n`); process.exit(4); }, 60000);
