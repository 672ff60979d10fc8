/**
 * `infergate <command>`: one entry point for every process and tool. Commands are loaded lazily so
 * that `infergate worker` never loads gateway code and vice versa.
 */
import { PACKAGE_VERSION } from '../version.ts';

const USAGE = `infergate ${PACKAGE_VERSION} — an inference gateway for ONNX models

Usage: infergate <command> [options]

Commands:
  worker    serve ONNX models over the Open Inference Protocol v2 (and TF-Serving REST);
            with --simulate-delay-ms, a simulated worker (fixed service time, no models) for capacity tests
  gateway   the public endpoint: balances inference requests across workers
  up        what \`npm start\` runs: a gateway in front of local workers serving models/
  keys      manage API keys: create, list, revoke, rotate
  token     mint a JWT for local testing

Run \`infergate <command> --help\` for a command's options.`;

type Command = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, () => Promise<Command>> = {
  worker: async () => (await import('../../worker/main.ts')).runWorker,
  gateway: async () => (await import('../../gateway/main.ts')).runGateway,
  up: async () => (await import('./up.ts')).runUp,
  keys: async () => (await import('./keys.ts')).runKeys,
  token: async () => (await import('./token.ts')).runToken,
};

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === '--version' || command === '-v') {
    console.log(PACKAGE_VERSION);
    return 0;
  }
  const load = COMMANDS[command];
  if (load === undefined) {
    console.error(`infergate: unknown command '${command}'\n\n${USAGE}`);
    return 2;
  }
  try {
    return await (await load())(rest);
  } catch (err) {
    console.error(`infergate ${command}: ${(err as Error).message}`);
    return 1;
  }
}
