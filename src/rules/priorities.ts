// Falco's alert priorities, most severe first: shared by the rule compiler and what formats alerts (the
// terminal line), which should not load the compiler and its CEL library to colour a word.
export const PRIORITIES = ['emergency', 'alert', 'critical', 'error', 'warning', 'notice', 'informational', 'debug'] as const;
export type Priority = (typeof PRIORITIES)[number];
