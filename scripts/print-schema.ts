/** Writes schema.graphql from the code (`npm run schema`). */
import fs from 'node:fs';
import { printedSchema } from '../src/server/schema.js';

fs.writeFileSync(new URL('../schema.graphql', import.meta.url), printedSchema());
console.log('schema.graphql written');
