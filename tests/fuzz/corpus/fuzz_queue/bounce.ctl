postie-queue 1
id 20261128194954-0c35a-1f2e3d4c5b
created 1
attempts 0
last-attempt 0
next-attempt 0
sender 
size 0
eightbit 1
bounce 1
body 8bitmime
ret hdrs
envid -
message-id -
error -
rcpt pending a@b - none
end
