#!/usr/bin/env node
// The `infergate` command. TypeScript sources run through tsx's loader so that `npm install` is the
// only step a user needs (no build). Registering here, not via `node --import`, keeps `npx infergate`
// and the package.json `bin` entry working from any shell.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv.slice(2));
