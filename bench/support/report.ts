export interface Row {
  name: string;
  dcx: string;
  baseline: string;
  ratio: string;
  target: string;
  met: boolean;
}

/** The results as Markdown: what `npm run bench` prints and writes to bench/results/latest.md. */
export function formatReport(rows: Row[], machine: string[], notes: string[]): string {
  const cell = (text: string) => text.replace(/\|/g, '\\|');
  return [
    '# DCX benchmark: latest results',
    '',
    'Written by `npm run bench` (see the README, section "Benchmark"). Figures are medians of the measured runs, with min–max;',
    'every baseline was measured in the same run on the same machine. Other processes sharing the CPUs make them noisy:',
    'the lead may re-run `npm run bench` on a quiet machine and commit the new file.',
    '',
    ...machine.map((line) => `- ${line}`),
    '',
    '| what | DCX | baseline | ratio | target | met |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (row) => `| ${[row.name, row.dcx, row.baseline, row.ratio, row.target, row.met ? 'yes' : '**no**'].map(cell).join(' | ')} |`,
    ),
    '',
    ...notes.map((note) => `- ${note}`),
    '',
  ].join('\n');
}
