/** Sluice's version: package.json's, read once (the same file from src/ and from the compiled dist/). */
import fs from 'node:fs';

export const VERSION: string = (JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
