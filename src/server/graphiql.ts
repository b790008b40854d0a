/**
 * GraphiQL served entirely from the installed `@graphql-yoga/render-graphiql` package: its CSS,
 * JavaScript, Monaco editor workers and favicon are inlined in the page, so it renders on a
 * machine without internet and the browser asks no other host for anything.
 *
 * The package's bundle is ~9 MB of source text: it is imported on the first GraphiQL request
 * (not at start, so an API-only server never holds it) and the page is rendered once per set
 * of options, then served from memory.
 */
import type { GraphiQLOptions } from 'graphql-yoga';

const pages = new Map<string, Promise<string>>();

export function renderOfflineGraphiQL(options: GraphiQLOptions): Promise<string> {
  const key = JSON.stringify(options ?? {});
  let page = pages.get(key);
  if (!page) {
    page = import('@graphql-yoga/render-graphiql').then(({ renderGraphiQL }) => renderGraphiQL(options));
    page.catch(() => pages.delete(key));
    pages.set(key, page);
  }
  return page;
}
