/** The first file of a multipart/form-data body (an HTML form or `curl -F file=@cat.jpg`). */
import { HttpError } from './protocol.js';

export function multipartFile(body: Buffer, contentType: string): Buffer {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const boundary = m?.[1] ?? m?.[2];
  if (!boundary) throw new HttpError(400, 'the multipart/form-data request has no boundary in its Content-Type');
  const delim = Buffer.from(`--${boundary}`);
  let pos = body.indexOf(delim);
  while (pos >= 0) {
    const headStart = pos + delim.length;
    if (body.subarray(headStart, headStart + 2).toString() === '--') break; // the closing delimiter
    const headEnd = body.indexOf('\r\n\r\n', headStart);
    if (headEnd < 0) break;
    const head = body.subarray(headStart, headEnd).toString('utf8');
    const next = body.indexOf(Buffer.from(`\r\n--${boundary}`), headEnd + 4);
    if (next < 0) throw new HttpError(400, 'the multipart/form-data body is truncated (no closing boundary)');
    // A file part: one with a filename, or the first part named "file" or "image".
    if (/filename=/i.test(head) || /name="(file|image)"/i.test(head)) return body.subarray(headEnd + 4, next);
    pos = next + 2;
  }
  throw new HttpError(400, 'the multipart/form-data body has no file part; upload the image as a file field (curl -F file=@image.jpg)');
}
