import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { IHttpApi } from './app.ts';

/**
 * Serves the API with Node's own `http` module (on Bun, `Bun.serve({ fetch: api.fetch })` does
 * it): each request becomes a `Request` for `api.fetch`, streamed, so `maxBodyBytes` bounds what
 * is read. Resolves once it listens; `close()` stops it.
 */
export function serveOnNode(
  api: Pick<IHttpApi, 'fetch'>,
  opts: { port: number; hostname?: string },
): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    void handle(api, req, res);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.hostname ?? '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : opts.port;
      resolve({
        server,
        port,
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}

async function handle(
  api: Pick<IHttpApi, 'fetch'>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  try {
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (Array.isArray(value)) for (const v of value) headers.append(name, v);
      else if (value !== undefined) headers.set(name, value);
    }
    const method = req.method ?? 'GET';
    const hasBody = method !== 'GET' && method !== 'HEAD';
    const body = hasBody
      ? new ReadableStream<Uint8Array>({
          start(controller) {
            req.on('data', (chunk: Buffer) => controller.enqueue(new Uint8Array(chunk)));
            req.on('end', () => controller.close());
            req.on('error', (error) => controller.error(error));
          },
          cancel() {
            req.destroy();
          },
        })
      : undefined;
    const request = new Request(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`, {
      method,
      headers,
      body,
      ...(hasBody ? { duplex: 'half' } : {}),
    } as RequestInit);
    const response = await api.fetch(request);
    res.statusCode = response.status;
    for (const [name, value] of response.headers) res.setHeader(name, value);
    res.end(Buffer.from(await response.arrayBuffer()));
  } catch {
    if (!res.headersSent) res.statusCode = 500;
    res.end();
  }
}
