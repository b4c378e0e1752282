import { BadRequestException, Injectable, PipeTransform } from '@nestjs/common';
import { deliveryIdToBytes, deliveryIdToString } from '../../protocol/delivery-id.js';

/**
 * Delivery IDs are 128 random bits in UUID notation, not RFC 4122 UUIDs (no version digit),
 * so Nest's ParseUUIDPipe would refuse most of them. Normalises to lower case.
 */
@Injectable()
export class ParseDeliveryIdPipe implements PipeTransform<string, string> {
  transform(value: string): string {
    try {
      return deliveryIdToString(deliveryIdToBytes(value));
    } catch {
      throw new BadRequestException('the delivery id must be 32 hex digits in UUID notation');
    }
  }
}
