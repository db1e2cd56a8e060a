// A pool on the npm package stratum (pocesar/node-stratum): the listener, the framing,
// the method routing and every reply's shape are the package's (it refuses
// mining.configure, answers a rejected submit as {"result": false, "error": null}, and
// its error codes are negative). This driver only decides, as a pool does: real jobs,
// SHA256d checks against the difficulty, duplicates and stale jobs refused; it prints one
// JSON line per verdict (its ledger):
//   node stratum_server_pool.js PORT DIFFICULTY
'use strict';
const crypto = require('crypto');
const stratum = require('stratum');
const { headerPrefix, hashValue, targetOf, le32 } = require('./sha256d_work');

const [portArg, difficultyArg] = process.argv.slice(2);
const difficulty = Number(difficultyArg);
const Server = stratum.Server;
const server = Server.$create({ settings: { port: Number(portArg), host: '127.0.0.1', toobusy: 1000 } });
const rnd = (n) => crypto.randomBytes(n).toString('hex');
const job = {
  jobId: '1', prevhash: rnd(32), coinb1: '01000000010000000000000000000000000000000000000000000000000000000000000000' + rnd(8),
  coinb2: rnd(12) + 'ffffffff', merkle_branch: [rnd(32), rnd(32)], version: '20000000', nbits: '1d00ffff',
  ntime: Math.floor(Date.now() / 1000).toString(16).padStart(8, '0'),
};
const seen = new Set();
let nextEn1 = 1;

function ledger(socket, params, code) {
  const [worker, jobId, extranonce2, ntime, nonce] = params;
  process.stdout.write(JSON.stringify({ worker, job_id: jobId, extranonce1: socket.en1, extranonce2, ntime, nonce, code }) + '\n');
}

server.on('mining', (req, deferred, socket) => {
  switch (req.method) {
    case 'subscribe':
      socket.en1 = (nextEn1++).toString(16).padStart(8, '0');
      deferred.resolve(['d' + socket.en1, 'n' + socket.en1, socket.en1, 4]);
      break;
    case 'authorize':
      // after the subscribe's own promise has settled, or the package answers NOT_SUBSCRIBED
      setImmediate(() => deferred.resolve([true]));
      deferred.promise.then(() => {
        socket.set_difficulty([difficulty]);
        socket.notify([job.jobId, job.prevhash, job.coinb1, job.coinb2, job.merkle_branch,
                       job.version, job.nbits, job.ntime, true]);
      });
      break;
    case 'submit': {
      const p = req.params.map(String);
      const key = p.slice(1, 5).concat(socket.en1).join('/');
      if (p[1] !== job.jobId) { ledger(socket, p, Server.errors.STALE_WORK[0]); deferred.reject(Server.errors.STALE_WORK); break; }
      if (seen.has(key)) { ledger(socket, p, Server.errors.DUPLICATE_SHARE[0]); deferred.reject(Server.errors.DUPLICATE_SHARE); break; }
      const header = Buffer.concat([headerPrefix(job, socket.en1, p[2], p[3]), le32(parseInt(p[4], 16))]);
      if (hashValue(header) > targetOf(difficulty)) { ledger(socket, p, 'false'); deferred.resolve([false]); break; }
      seen.add(key);
      ledger(socket, p, null);
      deferred.resolve([true]);
      break;
    }
    default:
      deferred.reject(Server.errors.METHOD_NOT_FOUND);
  }
});
server.on('mining.error', () => {});
server.listen().done(() => process.stderr.write('listening\n'));
