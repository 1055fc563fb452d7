// Keyset pages: the API hands out next_page_token only, so going back means remembering
// the tokens of the pages already seen.

export class PageTrail {
  constructor() {
    this.tokens = [""];
  }

  get current() {
    return this.tokens[this.tokens.length - 1];
  }

  get number() {
    return this.tokens.length;
  }

  get hasPrevious() {
    return this.tokens.length > 1;
  }

  forward(nextToken) {
    this.tokens.push(nextToken);
  }

  back() {
    if (this.hasPrevious) this.tokens.pop();
  }

  restart() {
    this.tokens = [""];
  }
}
