/**
 * Per-user credentials: several credentials may share a name when their `subject` (the end user)
 * differs, and one of them may have no subject (the shared one). Which one a request means:
 *
 * - a user given: that user's (the vault's own callers pass `fallbackToShared: false`: a user without
 *   a connection of their own is asked to connect rather than handed the shared one, and
 *   `rm --user U` never removes the shared one);
 * - no user: the shared one, else the only one there is, else it is ambiguous: the caller must name
 *   the user (`end_user_required`).
 */
export type SubjectSelection<T> = { found: T } | { found: undefined; ambiguous: boolean };

export const selectBySubject = <T extends { subject: string | null }>(
  candidates: readonly T[],
  user: string | undefined,
  options: { fallbackToShared: boolean },
): SubjectSelection<T> => {
  const shared = candidates.find((c) => c.subject === null);
  if (user !== undefined) {
    const own = candidates.find((c) => c.subject === user);
    const found = own ?? (options.fallbackToShared ? shared : undefined);
    return found ? { found } : { found: undefined, ambiguous: false };
  }
  if (shared) return { found: shared };
  if (candidates.length === 1) return { found: candidates[0] as T };
  return { found: undefined, ambiguous: candidates.length > 1 };
};
