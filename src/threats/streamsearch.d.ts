/** streamsearch@1 (busboy's Boyer-Moore-Horspool stream search) ships no types. */
declare module 'streamsearch' {
  type MatchCallback = (isMatch: boolean, data: Buffer | undefined, start: number, end: number, isDataSafe: boolean) => void;
  export default class StreamSearch {
    constructor(needle: Buffer | string, callback: MatchCallback);
    push(chunk: Buffer, position?: number): number;
    reset(): void;
    destroy(): void;
  }
}
