postie-queue 1
rcpt pending a@b
RSET - none
end
