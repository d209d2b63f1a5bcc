// Incremental text/event-stream parser (WHATWG HTML, "Server-sent events", §9.2.6),
// reduced to what measuring an LLM stream needs: the `data` of each event. Chunks from
// the network split lines, CRLF pairs and events anywhere, so all state lives here and
// push() may be called with any slice of the decoded text.

export class SseParser {
  private line = "";
  private data: string[] = [];
  /** The previous chunk ended in CR: a LF starting the next one belongs to the same line end. */
  private skipLf = false;

  /** Feeds decoded text; returns the data of every event completed by it, in order. */
  push(text: string): string[] {
    const out: string[] = [];
    if (text === "") return out;
    let i = this.skipLf && text.startsWith("\n") ? 1 : 0;
    this.skipLf = false;
    // Next CR and LF at or after i, each searched once per pass over the text.
    let cr = text.indexOf("\r", i);
    let lf = text.indexOf("\n", i);
    while (i < text.length) {
      if (cr >= 0 && cr < i) cr = text.indexOf("\r", i);
      if (lf >= 0 && lf < i) lf = text.indexOf("\n", i);
      const end = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
      if (end < 0) {
        this.line += text.slice(i);
        break;
      }
      this.line += text.slice(i, end);
      this.takeLine(out);
      i = end + 1;
      if (end === cr) {
        if (i === text.length) this.skipLf = true;
        else if (text[i] === "\n") i++;
      }
    }
    return out;
  }

  /**
   * The stream ended. The standard discards an event without its blank line; we keep it,
   * because a truncated final event is then reported as what it is (malformed JSON)
   * instead of silently shortening the response.
   */
  end(): string[] {
    const out: string[] = [];
    if (this.line !== "") this.takeLine(out);
    this.line = "";
    this.dispatch(out);
    return out;
  }

  private takeLine(out: string[]): void {
    const line = this.line;
    this.line = "";
    if (line === "") return this.dispatch(out);
    if (line.startsWith(":")) return; // comment (keep-alive)
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    if (field !== "data") return; // event, id, retry: nothing to measure
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    this.data.push(value);
  }

  private dispatch(out: string[]): void {
    if (this.data.length === 0) return;
    const data = this.data.join("\n");
    this.data = [];
    if (data !== "") out.push(data);
  }
}
