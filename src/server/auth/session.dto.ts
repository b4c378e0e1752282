import { ApiProperty } from '@nestjs/swagger';
import { IsString, Length } from 'class-validator';

/** Body of `POST /api/session` (JSON or form): the admin token, exchanged for a session cookie. */
export class LoginDto {
  @ApiProperty({ description: 'the admin token', minLength: 1, maxLength: 1024 })
  @IsString()
  @Length(1, 1024)
  token: string;
}

export interface SessionView {
  authenticated: true;
  /** When the cookie session ends; null when the request used the bearer token. */
  expiresAt: string | null;
}
