import { ApiProperty } from '@nestjs/swagger';

export class CreatedEnrolmentCodeView {
  @ApiProperty({ format: 'uuid' })
  id: string;
  @ApiProperty({ example: '7K3M-Q9XD', description: 'shown only in this answer; the server keeps its SHA-256' })
  code: string;
  @ApiProperty()
  expiresAt: Date;
  @ApiProperty({ format: 'uuid', nullable: true, type: String, description: 'the existing recipient it enrols a further installation of' })
  recipientId: string | null;
}

export class EnrolmentView {
  @ApiProperty({ format: 'uuid' })
  recipientId: string;
  @ApiProperty()
  name: string;
  @ApiProperty({ description: 'SHA-256 of the installation’s public key, hex' })
  fingerprint: string;
}
