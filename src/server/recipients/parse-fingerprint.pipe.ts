import { BadRequestException, Injectable, PipeTransform } from '@nestjs/common';

/** An installation's fingerprint in a path: 64 hex digits, normalised to lower case as stored. */
@Injectable()
export class ParseFingerprintPipe implements PipeTransform<string, string> {
  transform(value: string): string {
    if (!/^[0-9a-f]{64}$/i.test(value))
      throw new BadRequestException('fingerprint must be the 64 hex digits of an installation’s fingerprint');
    return value.toLowerCase();
  }
}
