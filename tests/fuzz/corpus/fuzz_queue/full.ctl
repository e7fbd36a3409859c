postie-queue 1
id 20261128194954-0c35a-1f2e3d4c5b
created 1764359394
attempts 2
last-attempt 1764359694
next-attempt 1764360294
sender alice@example.org
size 1234
eightbit 0
bounce 0
body -
ret -
envid QQ314159
message-id <20261128194954.1234@box.example>
error 451 4.3.0 Mail server temporarily rejected message
rcpt delivered bob@example.com - none 250 2.0.0 Ok
rcpt deferred carol@example.com failure,delay temp-reply 451 4.3.0 Try%20again%20later
header From: Alice <alice@example.org>
header To: bob@example.com, carol@example.com
header Subject: report
end
