import { Body, Controller, Delete, Get, HttpCode, Post, Req, Res, UseGuards } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AdminGuard } from './admin.guard.js';
import { SessionService } from './session.service.js';
import { LoginDto, type SessionView } from './session.dto.js';

/** The dashboard's login: the admin token in a POST body becomes a signed, expiring session cookie. */
@ApiTags('session')
@Controller('api/session')
export class SessionController {
  constructor(private readonly session: SessionService) {}

  @Post()
  @HttpCode(204)
  login(@Body() dto: LoginDto, @Req() req: IncomingMessage, @Res({ passthrough: true }) res: ServerResponse): void {
    this.session.login(dto.token, req, res);
  }

  @Get()
  @UseGuards(AdminGuard)
  current(@Req() req: IncomingMessage): SessionView {
    return this.session.current(req);
  }

  @Delete()
  @HttpCode(204)
  logout(@Req() req: IncomingMessage, @Res({ passthrough: true }) res: ServerResponse): void {
    this.session.logout(req, res);
  }
}
