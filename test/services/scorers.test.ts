/**
 * The evaluation scorers as the contract's `Scorer` schema describes them: every type, the defaults
 * (name, threshold), the notes a score carries, the judge's question and the grades read from its
 * answer, and the 400s a run's scorers get before anything runs.
 */
import { ApiError } from '../../src/errors/api-error';
import {
  type CellScore,
  type JudgeCall,
  JudgeFailedError,
  judgePrompt,
  levenshtein,
  normalizeScorers,
  parseGrade,
  REGEX_TIMEOUT_MS,
  type ScorerInput,
  type ScorerSpec,
  scoreCell,
  similarity,
} from '../../src/services/scorers';

/** A judge that must not be asked. */
const noJudge: JudgeCall = async () => {
  throw new Error('the judge was asked');
};

/** The one score of a single scorer on one cell. */
async function scoreWith(scorer: ScorerInput, text: string, expected: string | null, judge: JudgeCall = noJudge): Promise<CellScore> {
  const [score, ...others] = await scoreCell(normalizeScorers([scorer]), text, expected, judge);
  expect(others).toEqual([]);
  return score!;
}

/** A judge that answers `answer` and keeps what it was asked. */
function recordingJudge(answer: string) {
  const asked: Array<{ prompt: string; judgeModelId: string }> = [];
  const judge = async (prompt: string, judgeModelId: string): Promise<string> => {
    asked.push({ prompt, judgeModelId });
    return answer;
  };
  return { judge, asked };
}

/** The textbook two-row dynamic program, over code points: the oracle for the bit-parallel one. */
function naiveLevenshtein(a: string, b: string): number {
  const left = [...a];
  const right = [...b];
  let previous = Array.from({ length: right.length + 1 }, (_, index) => index);
  for (let line = 1; line <= left.length; line++) {
    const current = [line];
    for (let column = 1; column <= right.length; column++) {
      current[column] = Math.min(
        previous[column]! + 1,
        current[column - 1]! + 1,
        previous[column - 1]! + (left[line - 1] === right[column - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[right.length]!;
}

/** A deterministic pseudo-random generator, so a failing case can be replayed. */
function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state;
  };
}

function expectValidationError(run: () => unknown, details: RegExp): void {
  let thrown: unknown;
  try {
    run();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(ApiError);
  const error = thrown as ApiError;
  expect(error.extensions.code).toBe('validation_error');
  expect(error.extensions.http.status).toBe(400);
  expect(error.extensions.details).toMatch(details);
}

describe('normalizeScorers', () => {
  it('names each scorer after its type and gives it its type’s default threshold when the request does not', () => {
    const specs = normalizeScorers([
      { type: 'exact_match' },
      { type: 'contains' },
      { type: 'regex', value: 'a+' },
      { type: 'json_valid' },
      { type: 'similarity' },
      { type: 'llm_judge', judgeModelId: 'judge' },
    ]);
    expect(specs.map(({ name, threshold }) => [name, threshold])).toEqual([
      ['exact_match', 1],
      ['contains', 1],
      ['regex', 1],
      ['json_valid', 1],
      ['similarity', 0.5],
      ['llm_judge', 0.5],
    ]);
  });

  it('keeps the name, threshold, value, judge model and rubric the request gives, and leaves out absent ones', () => {
    expect(
      normalizeScorers([
        { type: 'llm_judge', name: 'tone', judgeModelId: 'judge', rubric: 'Polite?', threshold: 0.7, value: 'Hi' },
        { type: 'similarity', name: null, value: null, threshold: null },
      ]),
    ).toEqual<ScorerSpec[]>([
      { type: 'llm_judge', name: 'tone', judgeModelId: 'judge', rubric: 'Polite?', threshold: 0.7, value: 'Hi' },
      { type: 'similarity', name: 'similarity', threshold: 0.5 },
    ]);
  });

  it('refuses an empty list and a list of more than 10 scorers', () => {
    expectValidationError(() => normalizeScorers([]), /between 1 and 10 items, got 0/);
    const eleven = Array.from({ length: 11 }, (_, index) => ({ type: 'contains', name: `c${index}`, value: 'x' }));
    expectValidationError(() => normalizeScorers(eleven), /between 1 and 10 items, got 11/);
    expect(normalizeScorers(eleven.slice(0, 10))).toHaveLength(10);
  });

  it('refuses a regex whose value is not a valid regular expression, naming the scorer', () => {
    expectValidationError(
      () => normalizeScorers([{ type: 'json_valid' }, { type: 'regex', value: '(unclosed' }]),
      /^scorers\[1\]\.value is not a valid regular expression/,
    );
  });

  it('refuses an llm_judge without judge_model_id, or with a blank one', () => {
    expectValidationError(
      () => normalizeScorers([{ type: 'llm_judge', rubric: 'Correct?' }]),
      /scorers\[0\]: an llm_judge scorer needs judge_model_id/,
    );
    expectValidationError(() => normalizeScorers([{ type: 'llm_judge', judgeModelId: '  ' }]), /needs judge_model_id/);
  });

  it('refuses two scorers with the same name, a defaulted name included', () => {
    expectValidationError(
      () =>
        normalizeScorers([
          { type: 'contains', value: 'a' },
          { type: 'contains', value: 'b' },
        ]),
      /scorers\[1\]: the name "contains"/,
    );
    expectValidationError(
      () => normalizeScorers([{ type: 'contains', name: 'exact_match', value: 'a' }, { type: 'exact_match' }]),
      /"exact_match"/,
    );
    expect(
      normalizeScorers([
        { type: 'contains', value: 'a' },
        { type: 'contains', name: 'second', value: 'b' },
      ]),
    ).toHaveLength(2);
  });

  it('refuses an unknown type, a threshold outside 0 to 1 and a rubric over 4,000 characters', () => {
    expectValidationError(
      () => normalizeScorers([{ type: 'bleu' }]),
      /scorers\[0\]\.type must be one of exact_match, contains, regex, json_valid, similarity, llm_judge/,
    );
    expectValidationError(() => normalizeScorers([{ type: 'similarity', threshold: 1.5 }]), /threshold must be between 0 and 1, got 1.5/);
    expectValidationError(() => normalizeScorers([{ type: 'similarity', threshold: -0.1 }]), /got -0.1/);
    expectValidationError(
      () => normalizeScorers([{ type: 'llm_judge', judgeModelId: 'j', rubric: 'r'.repeat(4001) }]),
      /at most 4000 characters/,
    );
    expect(normalizeScorers([{ type: 'llm_judge', judgeModelId: 'j', rubric: 'r'.repeat(4000) }])).toHaveLength(1);
  });
});

describe('exact_match', () => {
  it('scores 1 when the text equals value, as it is (case and whitespace count)', async () => {
    expect(await scoreWith({ type: 'exact_match', value: 'Paris' }, 'Paris', null)).toEqual({
      scorer: 'exact_match',
      score: 1,
      passed: true,
      note: null,
    });
    expect(await scoreWith({ type: 'exact_match', value: 'Paris' }, 'paris', null)).toMatchObject({ score: 0, passed: false, note: null });
    expect(await scoreWith({ type: 'exact_match', value: 'Paris' }, 'Paris\n', null)).toMatchObject({ score: 0, passed: false });
  });

  it("compares with the case's expected when there is no value, and value wins over expected", async () => {
    expect(await scoreWith({ type: 'exact_match' }, 'Rome', 'Rome')).toMatchObject({ score: 1, passed: true });
    expect(await scoreWith({ type: 'exact_match', value: 'Paris' }, 'Rome', 'Rome')).toMatchObject({ score: 0, passed: false });
  });

  it('scores 0 with a note when there is neither value nor expected', async () => {
    const score = await scoreWith({ type: 'exact_match' }, 'Rome', null);
    expect(score).toMatchObject({ score: 0, passed: false });
    expect(score.note).toMatch(/exact_match needs a value or the case's expected answer/);
  });

  it('passes at any score when its threshold is 0', async () => {
    expect(await scoreWith({ type: 'exact_match', value: 'a', threshold: 0 }, 'b', null)).toMatchObject({ score: 0, passed: true });
  });
});

describe('contains', () => {
  it('scores 1 when the text contains value or the expected answer', async () => {
    expect(await scoreWith({ type: 'contains', value: 'Paris' }, 'The capital is Paris.', null)).toMatchObject({ score: 1, passed: true });
    expect(await scoreWith({ type: 'contains' }, 'The capital is Paris.', 'capital')).toMatchObject({ score: 1, passed: true });
    expect(await scoreWith({ type: 'contains', value: 'paris' }, 'The capital is Paris.', null)).toMatchObject({ score: 0, passed: false });
  });

  it('scores 0 with a note when there is nothing to look for', async () => {
    expect((await scoreWith({ type: 'contains' }, 'text', null)).note).toMatch(/contains needs a value/);
  });
});

describe('regex', () => {
  it('matches anywhere in the text, unanchored unless the pattern anchors itself', async () => {
    expect(await scoreWith({ type: 'regex', value: '\\d{3}-\\d{4}' }, 'call 555-1234 today', null)).toMatchObject({
      score: 1,
      passed: true,
    });
    expect(await scoreWith({ type: 'regex', value: '^\\d{3}' }, 'call 555-1234', null)).toMatchObject({ score: 0, passed: false });
    expect(await scoreWith({ type: 'regex', value: 'yes|no' }, 'I would say no.', null)).toMatchObject({ score: 1 });
  });

  it("uses the case's expected answer as the pattern when there is no value", async () => {
    expect(await scoreWith({ type: 'regex' }, 'Total: 42 USD', 'Total: \\d+')).toMatchObject({ score: 1, passed: true });
    expect(await scoreWith({ type: 'regex' }, 'Total: none', 'Total: \\d+')).toMatchObject({ score: 0, passed: false });
  });

  it('scores 0 with a note when the expected answer is not a valid regular expression', async () => {
    const score = await scoreWith({ type: 'regex' }, 'text', '([');
    expect(score).toMatchObject({ score: 0, passed: false });
    expect(score.note).toMatch(/not a valid regular expression/);
  });

  it('gives up a catastrophically backtracking pattern after its time limit, and does not run it again on the next cells', async () => {
    const specs = normalizeScorers([
      { type: 'regex', value: '^(a+)+$' },
      { type: 'contains', value: 'a' },
    ]);
    const text = `${'a'.repeat(40)}b`;
    const startedAt = performance.now();
    const first = await scoreCell(specs, text, null, noJudge);
    const firstMs = performance.now() - startedAt;
    expect(first[0]).toMatchObject({ scorer: 'regex', score: 0, passed: false });
    expect(first[0]!.note).toMatch(/catastrophic backtracking/);
    expect(first[1]).toMatchObject({ scorer: 'contains', score: 1 });
    // Without the limit this pattern runs for days on 41 characters.
    expect(firstMs).toBeLessThan(REGEX_TIMEOUT_MS * 40);

    const again = performance.now();
    const second = await scoreCell(specs, text, null, noJudge);
    expect(second[0]!.note).toMatch(/catastrophic backtracking/);
    expect(performance.now() - again).toBeLessThan(REGEX_TIMEOUT_MS);
  });

  it('still runs a sound pattern on a long text', async () => {
    const text = `${'word '.repeat(20_000)}needle`;
    expect(await scoreWith({ type: 'regex', value: '\\bneedle$' }, text, null)).toMatchObject({ score: 1, note: null });
  });
});

describe('json_valid', () => {
  it('scores 1 when the text parses as JSON, whatever the expected answer', async () => {
    expect(await scoreWith({ type: 'json_valid' }, '{"a": [1, 2]}', 'anything')).toMatchObject({ score: 1, passed: true, note: null });
    expect(await scoreWith({ type: 'json_valid' }, ' 42 ', null)).toMatchObject({ score: 1 });
    expect(await scoreWith({ type: 'json_valid' }, '{"a": 1', null)).toMatchObject({ score: 0, passed: false, note: null });
    expect(await scoreWith({ type: 'json_valid' }, '', null)).toMatchObject({ score: 0 });
    expect(await scoreWith({ type: 'json_valid' }, "{'a': 1}", null)).toMatchObject({ score: 0 });
  });
});

describe('similarity', () => {
  it('scores 1 - levenshtein / the longer length, on the strings as they are', async () => {
    // kitten -> sitting: 3 edits over 7 characters.
    expect((await scoreWith({ type: 'similarity', value: 'sitting' }, 'kitten', null)).score).toBeCloseTo(1 - 3 / 7, 12);
    expect((await scoreWith({ type: 'similarity' }, 'Hello', 'hello')).score).toBeCloseTo(0.8, 12);
    expect((await scoreWith({ type: 'similarity' }, 'abc', 'abc')).score).toBe(1);
    expect((await scoreWith({ type: 'similarity' }, 'abc', 'xyz')).score).toBe(0);
  });

  it('scores 1 when both strings are empty and 0 when only one is', async () => {
    expect(await scoreWith({ type: 'similarity', value: '' }, '', null)).toMatchObject({ score: 1, passed: true });
    expect(await scoreWith({ type: 'similarity' }, '', 'abc')).toMatchObject({ score: 0, passed: false });
    expect(await scoreWith({ type: 'similarity' }, 'abc', '')).toMatchObject({ score: 0, passed: false });
  });

  it('passes at 0.5 by default, or at its own threshold', async () => {
    // abcd vs abxy: 2 edits over 4, exactly 0.5.
    expect(await scoreWith({ type: 'similarity' }, 'abcd', 'abxy')).toMatchObject({ score: 0.5, passed: true });
    expect(await scoreWith({ type: 'similarity' }, 'abcd', 'axyz')).toMatchObject({ score: 0.25, passed: false });
    expect(await scoreWith({ type: 'similarity', threshold: 0.9 }, 'abcd', 'abcx')).toMatchObject({ score: 0.75, passed: false });
  });

  it('counts characters outside the Basic Multilingual Plane as one character each', () => {
    expect(levenshtein('😀a', '😃a')).toBe(1);
    expect(similarity('😀😀', '😀')).toBe(0.5);
  });

  it('scores 0 with a note when there is neither value nor expected', async () => {
    expect((await scoreWith({ type: 'similarity' }, 'text', null)).note).toMatch(/similarity needs a value/);
  });

  it('computes the same distance as the textbook dynamic program, across 32-character block edges', () => {
    const random = seeded(42);
    const alphabet = ['a', 'b', 'c', 'é', '😀', ' '];
    const text = (length: number, letters: number) => Array.from({ length }, () => alphabet[random() % letters]).join('');
    for (let trial = 0; trial < 600; trial++) {
      const a = text(random() % 150, 1 + (random() % alphabet.length));
      const b = text(random() % 150, 1 + (random() % alphabet.length));
      const expected = naiveLevenshtein(a, b);
      if (levenshtein(a, b) !== expected) throw new Error(`levenshtein(${JSON.stringify(a)}, ${JSON.stringify(b)}) is not ${expected}`);
      expect(levenshtein(b, a)).toBe(expected);
    }
  });

  it('handles two 10,000-character texts exactly', () => {
    const random = seeded(7);
    const letters = Array.from({ length: 10_000 }, () => String.fromCharCode(97 + ((random() >>> 16) % 26)));
    const original = letters.join('');
    // 100 substitutions at distinct, spread-out positions, and 50 characters more at the end.
    const changed = [...letters];
    for (let index = 0; index < 10_000; index += 100) changed[index] = changed[index] === 'A' ? 'B' : 'A';
    const other = `${changed.join('')}${'z'.repeat(50)}`;
    expect(levenshtein(original, other)).toBe(150);
    expect(similarity(original, other)).toBeCloseTo(1 - 150 / 10_050, 12);
    const unrelated = Array.from({ length: 10_000 }, () => String.fromCharCode(97 + ((random() >>> 16) % 26))).join('');
    const distance = levenshtein(original, unrelated);
    expect(levenshtein(unrelated, original)).toBe(distance);
    expect(distance).toBeGreaterThan(0);
    expect(distance).toBeLessThanOrEqual(10_000);
    // The oracle is too slow for 10,000 characters; 1,200 span 38 blocks.
    expect(levenshtein(original.slice(0, 1200), unrelated.slice(0, 1100))).toBe(
      naiveLevenshtein(original.slice(0, 1200), unrelated.slice(0, 1100)),
    );
  });
});

describe('llm_judge', () => {
  it('asks the judge model to grade the text against the rubric and expected answer, and scores grade / 10', async () => {
    const { judge, asked } = recordingJudge('The answer names the right city.\nGrade: 8');
    const score = await scoreWith(
      { type: 'llm_judge', judgeModelId: 'judge-model', rubric: 'Is it the capital?' },
      'Paris',
      'Paris, France',
      judge,
    );
    expect(score).toEqual({ scorer: 'llm_judge', score: 0.8, passed: true, note: null });
    expect(asked).toEqual([{ prompt: judgePrompt('Is it the capital?', 'Paris', 'Paris, France'), judgeModelId: 'judge-model' }]);
    expect(asked[0]!.prompt).toContain('Is it the capital?');
    expect(asked[0]!.prompt).toContain('<reference_answer>\nParis, France\n</reference_answer>');
    expect(asked[0]!.prompt).toContain('<answer>\nParis\n</answer>');
  });

  it('grades without a reference answer when the case has none', async () => {
    const { judge, asked } = recordingJudge('Grade: 4/10');
    const score = await scoreWith({ type: 'llm_judge', judgeModelId: 'j' }, 'Some answer', null, judge);
    expect(score).toEqual({ scorer: 'llm_judge', score: 0.4, passed: false, note: null });
    expect(asked[0]!.prompt).not.toContain('reference');
    expect(asked[0]!.prompt).toContain('correct, complete and relevant');
  });

  it('uses value as the reference answer when it is given', async () => {
    const { judge, asked } = recordingJudge('10');
    expect(await scoreWith({ type: 'llm_judge', judgeModelId: 'j', value: 'Rome' }, 'Rome', 'Paris', judge)).toMatchObject({ score: 1 });
    expect(asked[0]!.prompt).toContain('<reference_answer>\nRome\n</reference_answer>');
  });

  it('scores 0 with a note quoting the answer when no grade can be read from it', async () => {
    const { judge } = recordingJudge('I cannot grade this.');
    const score = await scoreWith({ type: 'llm_judge', judgeModelId: 'j', threshold: 0 }, 'text', null, judge);
    expect(score.score).toBe(0);
    expect(score.note).toBe('the judge\'s answer holds no grade from 0 to 10: "I cannot grade this."');
  });

  it('passes at 0.5 by default', async () => {
    expect(await scoreWith({ type: 'llm_judge', judgeModelId: 'j' }, 't', null, recordingJudge('Grade: 5').judge)).toMatchObject({
      score: 0.5,
      passed: true,
    });
    expect(await scoreWith({ type: 'llm_judge', judgeModelId: 'j' }, 't', null, recordingJudge('Grade: 4.9').judge)).toMatchObject({
      passed: false,
    });
  });

  it("lets a judge call's failure propagate to the runner", async () => {
    const failing = async (): Promise<string> => {
      throw new Error('judge unavailable');
    };
    await expect(scoreCell(normalizeScorers([{ type: 'llm_judge', judgeModelId: 'j' }]), 't', null, failing)).rejects.toThrow(
      'judge unavailable',
    );
  });
});

describe('a judge that failed upstream', () => {
  it('scores 0 with a note naming the judge and the error, and the next scorers still run', async () => {
    const failing = async (): Promise<string> => {
      throw new JudgeFailedError('model_unavailable');
    };
    const scores = await scoreCell(
      normalizeScorers([
        { type: 'llm_judge', judgeModelId: 'judge-x' },
        { type: 'contains', value: 't' },
      ]),
      't',
      null,
      failing,
    );
    expect(scores).toEqual([
      { scorer: 'llm_judge', score: 0, passed: false, note: 'no grade: the judge judge-x failed (model_unavailable)' },
      { scorer: 'contains', score: 1, passed: true, note: null },
    ]);
  });
});

describe('parseGrade', () => {
  it.each<[string, number]>([
    ['8', 8],
    ['7.5', 7.5],
    ['Grade: 7/10', 7],
    ['0', 0],
    ['10', 10],
    ['Grade: 10', 10],
    ['grade = 6', 6],
    ['Score: **9**', 9],
    ['Rating: 3.', 3],
    ['I would give it 8/10.', 8],
    ['8 out of 10', 8],
    ['The answer has 2 small errors and 1 omission.\nGrade: 6', 6],
    ['First thought: 4/10. After checking again, Grade: 7', 7],
    ['  9\n', 9],
  ])('reads %j as %d', (answer, grade) => {
    expect(parseGrade(answer)).toBe(grade);
  });

  it.each(['', 'no grade here', '11', '-1', 'Grade: 12/10', 'Grade: -2', '3 and 4', '4/5', 'Grade: 85'])(
    'finds no grade in %j',
    (answer) => {
      expect(parseGrade(answer)).toBeUndefined();
    },
  );
});

describe('scoreCell', () => {
  it("answers every scorer's score in the scorers' order, by name", async () => {
    const specs = normalizeScorers([
      { type: 'json_valid' },
      { type: 'contains', name: 'has-a', value: '"a"' },
      { type: 'similarity', name: 'close', threshold: 0.9 },
      { type: 'llm_judge', name: 'judge', judgeModelId: 'j' },
    ]);
    const scores = await scoreCell(specs, '{"a": 1}', '{"a": 2}', recordingJudge('Grade: 9').judge);
    expect(scores).toEqual([
      { scorer: 'json_valid', score: 1, passed: true, note: null },
      { scorer: 'has-a', score: 1, passed: true, note: null },
      { scorer: 'close', score: 1 - 1 / 8, passed: false, note: null },
      { scorer: 'judge', score: 0.9, passed: true, note: null },
    ]);
  });
});
