// Counts event-loop turns (setImmediate callbacks) from now until stopped: how many turns some work took.
export function countTurns(): { stop(): number } {
  let turns = 0;
  let counting = true;
  const count = (): void => {
    turns++;
    if (counting) setImmediate(count);
  };
  setImmediate(count);
  return {
    stop() {
      counting = false;
      return turns;
    },
  };
}
