/** `Key=value` lines of one `[section]` of an INI-style file (a desktop entry, a systemd unit). */
export function iniSection(text: string, section: string): Record<string, string> {
  const lines = text.split('\n');
  const start = lines.indexOf(`[${section}]`);
  if (start < 0) throw new Error(`no [${section}] in:\n${text}`);
  const keys: Record<string, string> = {};
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('[')) break;
    const match = /^([A-Za-z][\w-]*)=(.*)$/.exec(line);
    if (match) keys[match[1]] = match[2];
  }
  return keys;
}
