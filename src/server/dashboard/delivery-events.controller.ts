import { Controller, Sse, UseGuards, type MessageEvent } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { Observable } from 'rxjs';
import { AdminGuard } from '../auth/admin.guard.js';
import { DeliveryStreamService } from './delivery-stream.service.js';

/**
 * Live delivery events for the dashboard (EventSource sends the session cookie).
 * Under /api/events, not /api/deliveries/events, so that no `/api/deliveries/:id` route can capture it,
 * whatever order modules and controllers are registered in.
 */
@ApiTags('deliveries')
@ApiBearerAuth('admin')
@Controller('api/events')
@UseGuards(AdminGuard)
export class DeliveryEventsController {
  constructor(private readonly stream: DeliveryStreamService) {}

  @Sse('deliveries')
  @ApiOkResponse({ description: 'text/event-stream: one `delivery` event per committed audit-trail event, heartbeat comments every 15 s' })
  deliveries(): Observable<MessageEvent> {
    return this.stream.stream();
  }
}
