// Command-line options of the benchmarks: `--name value`.

/** The value after `name` on the command line, or undefined when the option is not given. */
export function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i === -1 ? undefined : process.argv[i + 1];
}
