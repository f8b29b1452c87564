import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { claimLock, lockHolder, processRunning, releaseLock } from '../../lib/io/lock.ts';
import { tmpdir } from '../helpers.ts';

const endedPid = () => spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();

t.test('a lock file is taken once, kept from other running processes, and taken over from ended ones', async (t) => {
  const file = path.join(tmpdir(), 'lock');
  t.equal(claimLock(file), undefined, 'free: taken');
  t.equal(readFileSync(file, 'utf8'), `${process.pid} ${os.hostname()}`, 'holds the pid and host');
  t.equal(claimLock(file), undefined, 'taken again by its holder');
  t.equal(lockHolder(file), undefined, 'this process is not "another" holder');
  // The parent of this process stands for another run that holds it.
  writeFileSync(file, String(process.ppid));
  t.equal(lockHolder(file), `process ${process.ppid}`, 'a pid alone is of this host');
  t.equal(claimLock(file), `process ${process.ppid}`, 'held by a running process: refused');
  t.equal(readFileSync(file, 'utf8'), String(process.ppid), 'and left alone');
  releaseLock(file);
  t.ok(existsSync(file), 'release leaves a lock this process does not hold');
  writeFileSync(file, endedPid());
  t.equal(lockHolder(file), undefined, 'an ended process holds nothing');
  t.equal(claimLock(file), undefined, 'taken over');
  t.equal(readFileSync(file, 'utf8'), `${process.pid} ${os.hostname()}`);
  // Another host's process cannot be checked: its lock stands.
  writeFileSync(file, `${endedPid()} elsewhere.example`);
  t.match(lockHolder(file), /^process \d+ on elsewhere\.example$/);
  t.match(claimLock(file), /on elsewhere\.example/, 'refused');
  writeFileSync(file, 'not a pid');
  t.equal(claimLock(file), undefined, 'an unreadable lock is taken over');
  releaseLock(file);
  t.notOk(existsSync(file), 'released');
});

t.test('a process that has ended but is not yet reaped (a zombie) does not hold a lock', { skip: process.platform !== 'linux' && 'Linux /proc only' }, async (t) => {
  // `sleep 0` becomes the child of a `sleep 5` that never reaps it: a zombie for 5 s.
  const child = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.teardown(() => child.kill('SIGKILL'));
  const zombie = Number(await new Promise<string>((resolve) => child.stdout.once('data', (d) => resolve(String(d).trim()))));
  for (let i = 0; i < 100 && !readFileSync(`/proc/${zombie}/stat`, 'utf8').includes(') Z '); i++) await new Promise((r) => setTimeout(r, 20));
  t.doesNotThrow(() => process.kill(zombie, 0), 'the zombie still has its pid');
  t.equal(processRunning(zombie), false);
  t.equal(processRunning(process.pid), true);
  const file = path.join(tmpdir(), 'lock');
  writeFileSync(file, String(zombie));
  t.equal(claimLock(file), undefined, 'its lock is taken over');
  releaseLock(file);
});
