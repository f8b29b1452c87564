import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { claimLock, lockHolder, releaseLock } from '../../lib/io/lock.ts';
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
