import { GroupCommitWriter } from '../../src/storage/group-commit-writer';
import { LedgerClosedError } from '../../src/storage/storage-errors';

/** A commit function that records its batches and finishes only when the test says so. */
function controlledCommits() {
  const batches: string[][] = [];
  const finishers: { resolve: () => void; reject: (error: Error) => void }[] = [];
  const commit = (batch: readonly string[]) =>
    new Promise<void>((resolve, reject) => {
      batches.push([...batch]);
      finishers.push({ resolve, reject });
    });
  return {
    batches,
    commit,
    finish: (index: number) => finishers[index]!.resolve(),
    fail: (index: number, error: Error) => finishers[index]!.reject(error),
  };
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Whether the promise has settled by the next turn of the event loop. */
async function stateOf(promise: Promise<unknown>): Promise<'resolved' | 'rejected' | 'pending'> {
  let state: 'resolved' | 'rejected' | 'pending' = 'pending';
  promise.then(
    () => {
      state = 'resolved';
    },
    () => {
      state = 'rejected';
    },
  );
  await nextTurn();
  return state;
}

describe('the group commit writer', () => {
  it('commits the first write of an idle turn at once, and the later writes of that turn together, as one batch', async () => {
    const commits = controlledCommits();
    const writer = new GroupCommitWriter<string>({ commit: commits.commit, maxBatchSize: 100 });
    const first = writer.write('a');
    expect(commits.batches).toEqual([['a']]); // one request in flight does not wait for the turn to end
    commits.finish(0);
    await first;
    // Still the same turn: these wait for its end and share one commit.
    const written = ['b', 'c', 'd'].map((write) => writer.write(write));
    expect(commits.batches).toEqual([['a']]);
    await nextTurn();
    expect(commits.batches).toEqual([['a'], ['b', 'c', 'd']]);
    commits.finish(1);
    await Promise.all(written);
    // A new turn: its first write goes at once again.
    const next = writer.write('e');
    expect(commits.batches).toEqual([['a'], ['b', 'c', 'd'], ['e']]);
    commits.finish(2);
    await next;
  });

  it('keeps even the first write for the end of the turn when mayCommitAlone says other writes are due', async () => {
    const commits = controlledCommits();
    let busy = true;
    const writer = new GroupCommitWriter<string>({ commit: commits.commit, maxBatchSize: 100, mayCommitAlone: () => !busy });
    const written = ['a', 'b'].map((write) => writer.write(write));
    expect(commits.batches).toEqual([]);
    await nextTurn();
    expect(commits.batches).toEqual([['a', 'b']]);
    commits.finish(0);
    await Promise.all(written);
    await nextTurn();
    busy = false;
    const alone = writer.write('c');
    expect(commits.batches).toEqual([['a', 'b'], ['c']]);
    commits.finish(1);
    await alone;
  });

  it('resolves a write only once the commit holding it has finished', async () => {
    const commits = controlledCommits();
    const writer = new GroupCommitWriter({ commit: commits.commit, maxBatchSize: 100 });
    const written = writer.write('a');
    await nextTurn();
    expect(await stateOf(written)).toBe('pending');
    commits.finish(0);
    expect(await stateOf(written)).toBe('resolved');
  });

  it('runs one commit at a time: writes that arrive during a commit form the next batch', async () => {
    const commits = controlledCommits();
    const writer = new GroupCommitWriter({ commit: commits.commit, maxBatchSize: 100 });
    const first = writer.write('a');
    await nextTurn();
    const later = [writer.write('b'), writer.write('c')];
    await nextTurn();
    expect(commits.batches).toEqual([['a']]);
    commits.finish(0);
    await first;
    await nextTurn();
    expect(commits.batches).toEqual([['a'], ['b', 'c']]);
    expect(await stateOf(later[0]!)).toBe('pending');
    commits.finish(1);
    await Promise.all(later);
  });

  it('splits a backlog into batches of at most maxBatchSize, letting the event loop turn between them', async () => {
    const events: string[] = [];
    const writer = new GroupCommitWriter<string>({
      commit: async (batch) => {
        events.push(`commit ${batch.join('')}`);
        setImmediate(() => events.push('other work'));
      },
      maxBatchSize: 2,
    });
    await Promise.all(['a', 'b', 'c', 'd', 'e'].map((write) => writer.write(write)));
    // 'a', the first write of an idle turn, went at once; the rest queued behind its commit.
    expect(events).toEqual(['commit a', 'other work', 'commit bc', 'other work', 'commit de']);
  });

  it('rejects every write of a failed commit with its error, and commits the next batch as usual', async () => {
    const commits = controlledCommits();
    const writer = new GroupCommitWriter({ commit: commits.commit, maxBatchSize: 100 });
    const first = writer.write('a'); // committed alone, at once
    const failing = [writer.write('b'), writer.write('c')];
    commits.finish(0);
    await first;
    await nextTurn();
    const broken = new Error('database unreachable');
    commits.fail(1, broken);
    for (const write of failing) await expect(write).rejects.toBe(broken);
    const next = writer.write('d');
    await nextTurn();
    commits.finish(2);
    await next;
    expect(commits.batches).toEqual([['a'], ['b', 'c'], ['d']]);
  });

  it('settles each write with its own result when the commit gives one per write (a savepoint each)', async () => {
    const refused = new Error('no room');
    const writer = new GroupCommitWriter<string, string>({
      commit: async (batch) =>
        batch.map(
          (write): PromiseSettledResult<string> =>
            write.startsWith('x') ? { status: 'rejected', reason: refused } : { status: 'fulfilled', value: write.toUpperCase() },
        ),
      maxBatchSize: 100,
      mayCommitAlone: () => false,
    });
    const written = ['a', 'xb', 'c'].map((write) => writer.write(write));
    expect(await Promise.allSettled(written)).toEqual([
      { status: 'fulfilled', value: 'A' },
      { status: 'rejected', reason: refused },
      { status: 'fulfilled', value: 'C' },
    ]);
  });

  it('waits for queued writes on close, and refuses writes after it', async () => {
    const commits = controlledCommits();
    const writer = new GroupCommitWriter({ commit: commits.commit, maxBatchSize: 100 });
    const written = writer.write('a');
    const closed = writer.close();
    await expect(writer.write('b')).rejects.toBeInstanceOf(LedgerClosedError);
    await nextTurn();
    expect(await stateOf(closed)).toBe('pending');
    commits.finish(0);
    await closed;
    expect(await stateOf(written)).toBe('resolved');
    expect(commits.batches).toEqual([['a']]);
  });

  it('refuses a batch size that is not a positive integer', () => {
    const commit = async () => undefined;
    expect(() => new GroupCommitWriter({ commit, maxBatchSize: 0 })).toThrow(/maxBatchSize/);
    expect(() => new GroupCommitWriter({ commit, maxBatchSize: 1.5 })).toThrow(/maxBatchSize/);
  });
});
