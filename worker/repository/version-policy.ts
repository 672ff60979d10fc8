import type { ModelConfig } from './model-config.ts';

/** Which of the versions found on disk a model's policy serves (Triton's version_policy). */
export function selectVersions(available: readonly number[], policy: ModelConfig['versionPolicy']): number[] {
  const sorted = [...available].sort((a, b) => b - a);
  if ('all' in policy) return sorted;
  if ('latest' in policy) return sorted.slice(0, policy.latest);
  return sorted.filter((v) => policy.specific.includes(v));
}
