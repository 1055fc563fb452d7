// Reads the gateway's streamed JSON arrays (WatchOrder, BulkCreateOrders) element by
// element as the bytes arrive: "[{...}" now, ",{...}" later, "]" at the end. Elements are
// objects (one message each); a chunk may end anywhere, even inside a string.

export class JsonArraySplitter {
  constructor() {
    this.buffer = "";
    this.position = 0;
    this.depth = 0;
    this.inString = false;
    this.escaped = false;
    this.elementStart = -1;
    this.closed = false;
  }

  // Every element the text so far completes, parsed.
  push(text) {
    this.buffer += text;
    const elements = [];
    for (; this.position < this.buffer.length; this.position += 1) {
      const char = this.buffer[this.position];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (char === "\\") this.escaped = true;
        else if (char === '"') this.inString = false;
        continue;
      }
      if (char === '"') {
        this.inString = true;
      } else if (char === "{" || char === "[") {
        if (this.depth === 1) this.elementStart = this.position;
        this.depth += 1;
      } else if (char === "}" || char === "]") {
        this.depth -= 1;
        if (this.depth === 1) {
          elements.push(JSON.parse(this.buffer.slice(this.elementStart, this.position + 1)));
          this.buffer = this.buffer.slice(this.position + 1);
          this.position = -1;
          this.elementStart = -1;
        } else if (this.depth === 0) {
          this.closed = true;
        }
      }
    }
    return elements;
  }
}

// Yields each element of the JSON array `response` streams; throws if the stream ends
// before the array does.
export async function* streamJsonArray(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const splitter = new JsonArraySplitter();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      yield* splitter.push(decoder.decode(value, { stream: true }));
    }
    yield* splitter.push(decoder.decode());
  } finally {
    reader.releaseLock();
  }
  if (!splitter.closed) throw new Error("the stream ended before its last element");
}
