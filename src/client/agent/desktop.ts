// `dcx register`: a browser's "open" on a downloaded .dcx runs `dcx open` (patent S702: the plug-in
// software starts on the delivery contents). Linux: a desktop entry and a shared-mime-info package,
// then the desktop's databases updated and dcx made the default, when their tools are installed.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BUNDLE_MEDIA_TYPE } from '../../protocol/constants.js';
import { runTool, toolLine, xdgDataHome } from './host-tools.js';

export const DESKTOP_FILE = 'dcx.desktop';
export const MIME_PACKAGE_FILE = 'dcx.xml';
export const PLUGIN_MEDIA_TYPE = 'application/vnd.dcx.plugin';
export const MEDIA_TYPES = [
  { type: BUNDLE_MEDIA_TYPE, glob: '*.dcx', comment: 'DCX delivery bundle', subClassOf: 'application/zip' },
  { type: PLUGIN_MEDIA_TYPE, glob: '*.dcxp', comment: 'DCX plug-in data', subClassOf: null },
] as const;

/** One Exec= argument, quoted as the Desktop Entry spec says (and `%` doubled: it starts field codes). */
function execWord(word: string): string {
  const escaped = word.replace(/%/g, '%%');
  if (!/[\s"'\\><~|&;$*?#()`]/.test(escaped)) return escaped;
  return `"${escaped.replace(/([\\"`$])/g, '\\$1')}"`;
}

/** `command` is how to run this dcx; `out` where opened bundles save their content. */
export function desktopEntry(command: string[], out: string): string {
  return [
    '[Desktop Entry]',
    'Type=Application',
    'Version=1.5',
    'Name=DCX',
    'GenericName=Confirmed delivery',
    'Comment=Verify and save a DCX delivery, then confirm it to its server',
    `Exec=${[...command, 'open', '--out', out].map(execWord).join(' ')} %f`,
    // A terminal shows what was saved and confirmed, or why not.
    'Terminal=true',
    'NoDisplay=true',
    `MimeType=${MEDIA_TYPES.map((m) => m.type).join(';')};`,
    'Categories=Network;FileTransfer;',
    '',
  ].join('\n');
}

export function mimePackage(): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info">',
    ...MEDIA_TYPES.flatMap((m) => [
      `  <mime-type type="${m.type}">`,
      `    <comment>${m.comment}</comment>`,
      ...(m.subClassOf ? [`    <sub-class-of type="${m.subClassOf}"/>`] : []),
      // Above the default 50: a .dcx is also a ZIP by its magic bytes, and the name must win.
      `    <glob pattern="${m.glob}" weight="60"/>`,
      '  </mime-type>',
    ]),
    '</mime-info>',
    '',
  ].join('\n');
}

export interface RegisterPaths {
  desktopPath: string;
  mimePath: string;
}

export function registerPaths(env: NodeJS.ProcessEnv = process.env): RegisterPaths {
  const data = xdgDataHome(env);
  return { desktopPath: join(data, 'applications', DESKTOP_FILE), mimePath: join(data, 'mime', 'packages', MIME_PACKAGE_FILE) };
}

/** What the desktop's tools are asked to do after the files changed; each skipped when not installed. */
function refreshSteps(env: NodeJS.ProcessEnv, makeDefault: boolean): [string, string[]][] {
  const data = xdgDataHome(env);
  return [
    ['update-mime-database', [join(data, 'mime')]],
    ['update-desktop-database', [join(data, 'applications')]],
    ...(makeDefault ? [['xdg-mime', ['default', DESKTOP_FILE, ...MEDIA_TYPES.map((m) => m.type)]] as [string, string[]]] : []),
  ];
}

export async function register(command: string[], out: string, env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const paths = registerPaths(env);
  await mkdir(join(paths.desktopPath, '..'), { recursive: true });
  await mkdir(join(paths.mimePath, '..'), { recursive: true });
  await writeFile(paths.desktopPath, desktopEntry(command, out), { mode: 0o644 });
  await writeFile(paths.mimePath, mimePackage(), { mode: 0o644 });
  const lines = [`wrote the desktop entry ${paths.desktopPath}`, `wrote the MIME types ${paths.mimePath} (*.dcx, *.dcxp)`];
  for (const [tool, args] of refreshSteps(env, true)) lines.push(toolLine(tool, args, await runTool(tool, args, env)));
  return lines;
}

export async function unregister(env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const paths = registerPaths(env);
  await rm(paths.desktopPath, { force: true });
  await rm(paths.mimePath, { force: true });
  const lines = [`removed ${paths.desktopPath}`, `removed ${paths.mimePath}`];
  for (const [tool, args] of refreshSteps(env, false)) lines.push(toolLine(tool, args, await runTool(tool, args, env)));
  return lines;
}
